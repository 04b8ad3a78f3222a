package engine

import (
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds of the verdict latency buckets,
// smallest first; a last bucket counts what is slower than all of them.
var LatencyBounds = [...]time.Duration{
	250 * time.Nanosecond,
	500 * time.Nanosecond,
	time.Microsecond,
	2500 * time.Nanosecond,
	5 * time.Microsecond,
	10 * time.Microsecond,
	25 * time.Microsecond,
	100 * time.Microsecond,
	time.Millisecond,
}

// Latency is a histogram of sampled Decide durations: Counts[i] for
// i < len(LatencyBounds) counts samples no slower than LatencyBounds[i]
// (not cumulative), the last one the slower rest.
type Latency struct {
	Counts [len(LatencyBounds) + 1]uint64
	Sum    time.Duration
}

// Samples is the number of samples.
func (l Latency) Samples() uint64 {
	var n uint64
	for _, c := range l.Counts {
		n += c
	}
	return n
}

// latencyHist is one worker's histogram: written by the worker only,
// read by anyone (a scrape), so the counters are atomic but never
// contended.
type latencyHist struct {
	counts [len(LatencyBounds) + 1]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

func (h *latencyHist) observe(d time.Duration) {
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

func (h *latencyHist) addTo(l *Latency) {
	for i := range h.counts {
		l.Counts[i] += h.counts[i].Load()
	}
	l.Sum += time.Duration(h.sum.Load())
}
