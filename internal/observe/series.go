package observe

import (
	"time"
)

// Series keeps per-second samples of the accepted and dropped counters,
// the last n of them, for the status page's chart. A ticker off the hot
// path adds one a second (Server does). Safe for concurrent use.
type Series struct {
	r ring[sample]
}

type sample struct {
	t                 time.Time
	accepted, dropped uint64 // counters as read at t
}

// NewSeries keeps n samples: n-1 per-second rates.
func NewSeries(n int) *Series {
	return &Series{r: newRing[sample](n)}
}

// Add records the counters as read at t.
func (s *Series) Add(t time.Time, accepted, dropped uint64) {
	s.r.add(sample{t, accepted, dropped})
}

// Rates are per-second rates between consecutive samples, oldest first.
type Rates struct {
	End      time.Time `json:"end"` // time of the last sample
	Accepted []float64 `json:"accepted"`
	Dropped  []float64 `json:"dropped"`
}

// Rates returns the rates between the samples kept.
func (s *Series) Rates() Rates {
	r := Rates{Accepted: []float64{}, Dropped: []float64{}}
	samples := s.r.oldestFirst()
	n := len(samples)
	for i := 1; i < n; i++ {
		a, b := samples[i-1], samples[i]
		sec := b.t.Sub(a.t).Seconds()
		if sec <= 0 {
			sec = 1
		}
		r.Accepted = append(r.Accepted, rate(a.accepted, b.accepted, sec))
		r.Dropped = append(r.Dropped, rate(a.dropped, b.dropped, sec))
	}
	if n > 0 {
		r.End = samples[n-1].t
	}
	return r
}

func rate(from, to uint64, sec float64) float64 {
	if to < from { // counters do not go back; a restart would
		return 0
	}
	return float64(to-from) / sec
}
