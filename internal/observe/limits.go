package observe

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/filter"
)

// limitSource is what the metrics of limits read (*engine.Engine); an
// Engine without it has no limit metrics.
type limitSource interface {
	LimitStatus(*filter.Table) ([]engine.RuleLimit, engine.LimitStats)
}

var (
	limitedDesc = prometheus.NewDesc("fwd_rule_limited_total",
		"New flows a rule allows that were dropped because their peer was over the rule's limit (reason limited), since the rule went live: rule is its ID (sgr-...).", []string{"rule"}, nil)
	limitedPeersDesc = prometheus.NewDesc("fwd_rule_limited_peers",
		"Peers over a rule's limit now (an IPv6 peer counted by its /64).", []string{"rule"}, nil)
	limitEntriesDesc = prometheus.NewDesc("fwd_limit_table_entries",
		"(rule, peer) entries of the limit table in use (whose window has not passed); the table's size is fwd --limit-entries.", nil, nil)
	limitEvictionsDesc = prometheus.NewDesc("fwd_limit_table_evictions_total",
		"Entries of the limit table taken over by another peer while their window was open (the table was full around them).", nil, nil)
)

// collectLimits sends the limit metrics, and the limited drops as a
// reason of fwd_flows_dropped_total.
func (c *Collector) collectLimits(ch chan<- prometheus.Metric, s engine.Stats) {
	ch <- prometheus.MustNewConstMetric(c.d.dropped, prometheus.CounterValue, float64(s.DroppedLimited), engine.ReasonLimited)
	ls, ok := c.src.Engine.(limitSource)
	if !ok {
		return
	}
	rl, st := ls.LimitStatus(c.src.Engine.Table())
	for _, r := range rl {
		ch <- prometheus.MustNewConstMetric(limitedDesc, prometheus.CounterValue, float64(r.Limited), r.ID)
		ch <- prometheus.MustNewConstMetric(limitedPeersDesc, prometheus.GaugeValue, float64(r.Over), r.ID)
	}
	ch <- prometheus.MustNewConstMetric(limitEntriesDesc, prometheus.GaugeValue, float64(st.InUse))
	ch <- prometheus.MustNewConstMetric(limitEvictionsDesc, prometheus.CounterValue, float64(st.Evictions))
}
