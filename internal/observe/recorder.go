package observe

import (
	"context"
	"time"
)

// Recorder keeps, in bounded rings, what the status page shows over
// time. Its parts are safe for concurrent use.
type Recorder struct {
	Series  *Series  // per-second accepted and dropped
	Drops   *Drops   // the engine's DropRecorder
	Reloads *Reloads // lifecycle's Observe
}

// Ring sizes.
const (
	SeriesSeconds = 300 // five minutes of per-second rates
	RecentDrops   = 50
	RecentReloads = 20
)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{Series: NewSeries(SeriesSeconds + 1), Drops: NewDrops(RecentDrops), Reloads: NewReloads(RecentReloads)}
}

// Sample adds one sample of e's counters to the series.
func (r *Recorder) Sample(e Engine, now time.Time) {
	s := e.Stats()
	r.Series.Add(now, s.Accepted, s.DroppedNoMatch+s.DroppedUndecodable+s.DroppedNoTable)
}

// Run samples e every interval until ctx ends: the ticker that fills the
// series, off the hot path.
func (r *Recorder) Run(ctx context.Context, e Engine, interval time.Duration) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	r.Sample(e, time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			r.Sample(e, now)
		}
	}
}
