package observe

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fwd-project/fwd/internal/lifecycle"
)

// Reloads keeps the last reloads (lifecycle's ServiceConfig.Observe) and
// a histogram of their durations. Safe for concurrent use.
type Reloads struct {
	r        ring[lifecycle.ReloadEvent]
	duration prometheus.Histogram
}

// NewReloads keeps the last n reloads.
func NewReloads(n int) *Reloads {
	return &Reloads{
		r: newRing[lifecycle.ReloadEvent](n),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fwd_reload_duration_seconds",
			Help:    "Time a reload took, from reading the rules file to the new table live (the first load included).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
}

// Record keeps ev; it is a lifecycle ServiceConfig.Observe.
func (r *Reloads) Record(ev lifecycle.ReloadEvent) {
	r.duration.Observe(ev.Duration.Seconds())
	r.r.add(ev)
}

// Recent returns the reloads kept, newest first.
func (r *Reloads) Recent() []lifecycle.ReloadEvent { return r.r.newestFirst() }
