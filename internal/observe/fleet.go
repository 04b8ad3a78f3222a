package observe

import (
	"github.com/prometheus/client_golang/prometheus"
)

// FleetStats is what fleet mode reports to the metrics.
type FleetStats struct {
	// Revision is the store revision of the snapshot in force.
	Revision int64
	// StalenessSeconds is how long ago the store last answered.
	StalenessSeconds float64
	// Snapshots, Refused and Resyncs count snapshots put in force,
	// snapshots refused (invalid: the previous stayed) and full re-reads
	// of the store.
	Snapshots, Refused, Resyncs uint64
	// Error is true while the last snapshot built was refused.
	Error bool
}

// collectFleet sends the fwd_fleet_* metrics when fwd runs in fleet mode.
func (c *Collector) collectFleet(ch chan<- prometheus.Metric) {
	if c.src.Fleet == nil {
		return
	}
	s := c.src.Fleet()
	gauge := func(name, help string, v float64) {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, v)
	}
	gauge("fwd_fleet_revision", "Store revision of the fleet snapshot this host enforces.", float64(s.Revision))
	gauge("fwd_fleet_staleness_seconds", "Seconds since the fleet store last answered (the snapshot in force may be this old).", s.StalenessSeconds)
	errv := 0.0
	if s.Error {
		errv = 1
	}
	gauge("fwd_fleet_snapshot_error", "1 while the last fleet snapshot built was refused as invalid (the previous one stays in force).", errv)
	d := prometheus.NewDesc("fwd_fleet_snapshots_total", "Fleet snapshots, by result: applied (put in force) or refused (invalid, the previous stayed).", []string{"result"}, nil)
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(s.Snapshots), "applied")
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(s.Refused), "refused")
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("fwd_fleet_resyncs_total", "Full re-reads of the fleet store after the first (compaction, a revision going backwards, a failed consistency check).", nil, nil),
		prometheus.CounterValue, float64(s.Resyncs))
}
