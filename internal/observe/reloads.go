package observe

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fwd-project/fwd/internal/lifecycle"
)

// Reloads keeps the last reloads (lifecycle's ServiceConfig.Observe) and
// a histogram of their durations. Safe for concurrent use.
type Reloads struct {
	mu       sync.Mutex
	buf      []lifecycle.ReloadEvent // a ring of cap(buf)
	next     int
	duration prometheus.Histogram
}

// NewReloads keeps the last n reloads.
func NewReloads(n int) *Reloads {
	return &Reloads{
		buf: make([]lifecycle.ReloadEvent, 0, n),
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
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, ev)
		return
	}
	r.buf[r.next] = ev
	r.next = (r.next + 1) % len(r.buf)
}

// Recent returns the reloads kept, newest first.
func (r *Reloads) Recent() []lifecycle.ReloadEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]lifecycle.ReloadEvent, 0, len(r.buf))
	for i := range r.buf {
		out = append(out, r.buf[(r.next+len(r.buf)-1-i)%len(r.buf)])
	}
	return out
}
