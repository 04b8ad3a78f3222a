package observe

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// collectQueues sends fwd_queue_restarts_total: how many times fwd's
// queue watchdog restarted each queue whose reader had stopped
// answering.
func (c *Collector) collectQueues(ch chan<- prometheus.Metric) {
	if c.src.QueueRestarts == nil {
		return
	}
	d := prometheus.NewDesc("fwd_queue_restarts_total",
		"Times fwd's queue watchdog restarted a queue whose reader had stopped answering (packets waiting in the kernel, none taken).",
		[]string{"queue"}, nil)
	for i, n := range c.src.QueueRestarts() {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), strconv.Itoa(int(c.src.QueueFirst)+i))
	}
}
