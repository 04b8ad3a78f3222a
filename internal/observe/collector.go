package observe

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/nfq"
)

// Engine is what the metrics read from the engine (*engine.Engine).
type Engine interface {
	Stats() engine.Stats
	Table() *filter.Table
	RuleHits(*filter.Table) map[filter.Result]uint64
}

// ReloadCounter counts reloads (*lifecycle.Service).
type ReloadCounter interface {
	Stats() lifecycle.ReloadStats
}

// Sources are what the Collector and the status page read, all at
// scrape or request time.
type Sources struct {
	Engine  Engine
	Reloads ReloadCounter
	// QueueFirst and QueueCount are fwd's queues, whose kernel counters
	// KernelStats reads (nil: nfq.ReadKernelStats).
	QueueFirst, QueueCount uint16
	KernelStats            func() ([]nfq.KernelStats, error)
	// LatencySampleEvery is the engine's sampling rate, for the help text.
	LatencySampleEvery uint32
	Log                *slog.Logger
	// QueueRestarts, when set, returns how many times the queue
	// watchdog restarted each queue (QueueFirst onwards).
	QueueRestarts func() []uint64
	// Fleet, when set, returns fleet mode's state (fleet.go).
	Fleet func() FleetStats
}

func (s *Sources) kernelStats() ([]nfq.KernelStats, error) {
	read := s.KernelStats
	if read == nil {
		read = nfq.ReadKernelStats
	}
	all, err := read()
	if err != nil {
		return nil, err
	}
	var out []nfq.KernelStats
	for _, k := range all {
		if k.Num >= s.QueueFirst && int(k.Num) < int(s.QueueFirst)+int(s.QueueCount) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Collector is a prometheus.Collector that reads the engine's per-worker
// counters, summed, at every scrape: the workers never see Prometheus.
type Collector struct {
	src *Sources
	d   descs
}

type descs struct {
	accepted, dropped, groupAccepted, ruleAccepted, logSkipped  *prometheus.Desc
	queued, recvErrors, verdictErrors, malformed, workers       *prometheus.Desc
	kernelQueueDropped, kernelUserDropped, kernelWaiting        *prometheus.Desc
	latency, reloads, rulesInfo, tableLive, tableRules, tableMB *prometheus.Desc
	tablePrefixes, tableIntervals, tablePortMaps, tableRanges   *prometheus.Desc
}

// NewCollector returns a Collector reading src.
func NewCollector(src *Sources) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Collector{src: src, d: descs{
		accepted:           d("fwd_flows_accepted_total", "New flows (connections) accepted."),
		dropped:            d("fwd_flows_dropped_total", "New flows dropped, by reason: no-match (no rule allows it), acl-deny (an ACL entry denies it), limited (its peer is over the rule's limit), undecodable, no-table (before the first rules).", "reason"),
		groupAccepted:      d("fwd_group_accepted_total", "New flows accepted by the rules of a security group, since each rule went live.", "group"),
		ruleAccepted:       d("fwd_rule_accepted_total", "New flows accepted by a rule of the live table: rule is its ID as fwctl status lists it (sgr-...), or default for a group's implicit egress accept.", "group", "dir", "rule"),
		logSkipped:         d("fwd_drop_log_skipped_total", "Drops not logged because of the drop log's rate limit."),
		queued:             d("fwd_queue_packets_total", "Packets received from the kernel's queues."),
		recvErrors:         d("fwd_queue_recv_errors_total", "Errors receiving from the queues (the kernel's socket buffer overran)."),
		verdictErrors:      d("fwd_queue_verdict_errors_total", "Verdicts the kernel refused."),
		malformed:          d("fwd_queue_malformed_total", "Queue messages fwd could not parse."),
		workers:            d("fwd_workers", "Queue workers running."),
		kernelQueueDropped: d("fwd_kernel_queue_dropped_total", "Packets the kernel dropped (or accepted, failing open) because the queue was full.", "queue"),
		kernelUserDropped:  d("fwd_kernel_user_dropped_total", "Packets the kernel dropped because fwd's netlink socket buffer was full.", "queue"),
		kernelWaiting:      d("fwd_kernel_queue_waiting", "Packets waiting in the kernel's queue for a verdict.", "queue"),
		latency:            d("fwd_verdict_latency_seconds", "Time to decide a queued packet (decode, match, count), sampled one packet in fwd_verdict_latency_sample_every."),
		reloads:            d("fwd_reloads_total", "Reloads (SIGHUP, fwctl reload, edits) by result: ok, failed, unchanged. The first load is not counted.", "result"),
		rulesInfo:          d("fwd_rules_info", "The live rules: the sha256 of the rules file, always 1.", "hash"),
		tableLive:          d("fwd_table_live", "1 when a rule table is live, 0 before the first (fwd drops everything)."),
		tableRules:         d("fwd_table_rules", "Rules in the live table, plus one per implicit egress accept."),
		tableMB:            d("fwd_table_memory_bytes", "Estimated memory of the live table's lookup arrays."),
		tablePrefixes:      d("fwd_table_prefixes", "Distinct (direction, protocol, prefix) entries of the live table."),
		tableIntervals:     d("fwd_table_port_intervals", "Port intervals over the live table's distinct port maps."),
		tablePortMaps:      d("fwd_table_port_maps", "Distinct port maps of the live table."),
		tableRanges:        d("fwd_table_v4_ranges", "Address ranges inside IPv4 /16s split by longer prefixes."),
	}}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

// Collect reads the counters and sends them.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	s := c.src.Engine.Stats()
	counter(c.d.accepted, s.Accepted)
	counter(c.d.dropped, s.DroppedNoMatch, engine.ReasonNoMatch)
	counter(c.d.dropped, s.DroppedUndecodable, engine.ReasonUndecodable)
	counter(c.d.dropped, s.DroppedNoTable, engine.ReasonNoTable)
	counter(c.d.dropped, s.DroppedACL, engine.ReasonACLDeny)
	c.collectLimits(ch, s)
	counter(c.d.logSkipped, s.DropLogSkipped)
	counter(c.d.queued, s.Queue.Received)
	counter(c.d.recvErrors, s.Queue.RecvErrors)
	counter(c.d.verdictErrors, s.Queue.VerdictErrors)
	counter(c.d.malformed, s.Queue.Malformed)
	gauge(c.d.workers, float64(s.Workers))
	c.collectLatency(ch, s.Latency)
	c.collectKernel(ch)
	c.collectQueues(ch)
	c.collectFleet(ch)
	c.collectTable(ch)
	r := c.src.Reloads.Stats()
	counter(c.d.reloads, r.OK, lifecycle.ReloadOK)
	counter(c.d.reloads, r.Failed, lifecycle.ReloadFailed)
	counter(c.d.reloads, r.Unchanged, lifecycle.ReloadUnchanged)
}

func (c *Collector) collectLatency(ch chan<- prometheus.Metric, l engine.Latency) {
	buckets := make(map[float64]uint64, len(engine.LatencyBounds))
	var cum uint64
	for i, b := range engine.LatencyBounds {
		cum += l.Counts[i]
		buckets[b.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.d.latency, l.Samples(), l.Sum.Seconds(), buckets)
}

func (c *Collector) collectKernel(ch chan<- prometheus.Metric) {
	ks, err := c.src.kernelStats()
	if err != nil {
		if c.src.Log != nil {
			c.src.Log.Debug("metrics: kernel queue stats", "err", err)
		}
		return
	}
	for _, k := range ks {
		q := itoa(int(k.Num))
		ch <- prometheus.MustNewConstMetric(c.d.kernelQueueDropped, prometheus.CounterValue, float64(k.QueueDropped), q)
		ch <- prometheus.MustNewConstMetric(c.d.kernelUserDropped, prometheus.CounterValue, float64(k.UserDropped), q)
		ch <- prometheus.MustNewConstMetric(c.d.kernelWaiting, prometheus.GaugeValue, float64(k.Waiting), q)
	}
}

func (c *Collector) collectTable(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	t := c.src.Engine.Table()
	if t == nil || t.File() == nil {
		gauge(c.d.tableLive, 0)
		return
	}
	gauge(c.d.tableLive, 1)
	gauge(c.d.rulesInfo, 1, t.File().Hash)
	st := t.Stats()
	gauge(c.d.tableRules, float64(st.Rules))
	gauge(c.d.tablePrefixes, float64(st.Prefixes))
	gauge(c.d.tableIntervals, float64(st.Intervals))
	gauge(c.d.tablePortMaps, float64(st.PortMaps))
	gauge(c.d.tableRanges, float64(st.V4Ranges))
	gauge(c.d.tableMB, float64(t.MemoryBytes()))
	byGroup := make(map[string]uint64)
	var groups []string
	for _, r := range ruleHits(t, c.src.Engine.RuleHits(t)) {
		ch <- prometheus.MustNewConstMetric(c.d.ruleAccepted, prometheus.CounterValue, float64(r.Hits), r.Group, r.Dir.String(), r.Label())
		if _, ok := byGroup[r.Group]; !ok {
			groups = append(groups, r.Group)
		}
		byGroup[r.Group] += r.Hits
	}
	for _, g := range groups {
		ch <- prometheus.MustNewConstMetric(c.d.groupAccepted, prometheus.CounterValue, float64(byGroup[g]), g)
	}
}
