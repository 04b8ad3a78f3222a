// Package queuewatch tells when a queue reader has stopped answering:
// the kernel holds packets for it (nfnetlink_queue's "waiting" above
// zero) while fwd's count of packets received from that queue does not
// move, check after check. It is the decision part of fwd's queue
// watchdog, with no I/O: the daemon feeds it samples (package nfq's
// KernelStats and the queue's Stats) and acts on its answers (close and
// reopen the queue, or exit so that the service manager restarts fwd).
// The clock is injected.
package queuewatch

import (
	"fmt"
	"time"
)

// Sample is one check of one queue.
type Sample struct {
	Waiting  uint32 // packets the kernel holds for the queue, waiting for a verdict
	IDSeq    uint32 // the kernel's id of the last packet queued
	Received uint64 // packets fwd's reader took from the queue (nfq.Stats.Received)
}

// Action is what the watcher asks of the daemon after a sample.
type Action int

// Actions.
const (
	None    Action = iota
	Restart        // close and reopen the queue, then call Restarted
	GiveUp         // the queue stalled again too soon: exit, for the service manager to restart fwd
)

// Config configures a Watcher; zero fields take the defaults.
type Config struct {
	// Checks is how many checks in a row must find the queue stalled
	// before it is restarted (default 3).
	Checks int
	// MaxRestarts within Window make the next stall a GiveUp (default 3
	// within a minute).
	MaxRestarts int
	Window      time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Defaults.
const (
	DefaultChecks      = 3
	DefaultMaxRestarts = 3
	DefaultWindow      = time.Minute
)

// Watcher follows a fixed number of queues. It is not safe for
// concurrent use, except Health, Restarts and Stalled, which take a
// snapshot a caller must not share with Observe; the daemon guards it
// with a mutex.
type Watcher struct {
	cfg    Config
	queues []queue
}

type queue struct {
	last     Sample
	seen     bool // last is set
	stuck    int  // checks in a row found stalled
	restarts []time.Time
	total    uint64
}

// New returns a Watcher of n queues.
func New(n int, cfg Config) *Watcher {
	if cfg.Checks <= 0 {
		cfg.Checks = DefaultChecks
	}
	if cfg.MaxRestarts <= 0 {
		cfg.MaxRestarts = DefaultMaxRestarts
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Watcher{cfg: cfg, queues: make([]queue, n)}
}

// Observe takes queue i's sample and says what to do. The queue is
// stalled when the kernel has packets waiting for it and its reader
// took none since the previous check; Checks stalled checks in a row ask
// for a Restart, or a GiveUp once MaxRestarts happened within Window.
func (w *Watcher) Observe(i int, s Sample) Action {
	q := &w.queues[i]
	stalled := q.seen && s.Waiting > 0 && s.Received == q.last.Received
	q.last, q.seen = s, true
	if !stalled {
		q.stuck = 0
		return None
	}
	q.stuck++
	if q.stuck < w.cfg.Checks {
		return None
	}
	now := w.cfg.Now()
	recent := 0
	for _, t := range q.restarts {
		if now.Sub(t) < w.cfg.Window {
			recent++
		}
	}
	if recent >= w.cfg.MaxRestarts {
		return GiveUp
	}
	return Restart
}

// Restarted records that queue i was reopened: its reader's counts
// start again from zero.
func (w *Watcher) Restarted(i int) {
	q := &w.queues[i]
	now := w.cfg.Now()
	kept := q.restarts[:0]
	for _, t := range q.restarts {
		if now.Sub(t) < w.cfg.Window {
			kept = append(kept, t)
		}
	}
	q.restarts = append(kept, now)
	q.total++
	q.seen, q.stuck = false, 0
}

// Restarts returns how many times queue i was restarted.
func (w *Watcher) Restarts(i int) uint64 { return w.queues[i].total }

// Stalled reports whether queue i was found stalled at the last check.
func (w *Watcher) Stalled(i int) bool { return w.queues[i].stuck > 0 }

// Health is queue i's health as status shows it: "stalled" while it is
// found stalled, "restarted N times" once it was, else "ok".
func (w *Watcher) Health(i int) string {
	q := &w.queues[i]
	switch {
	case q.stuck > 0:
		return "stalled"
	case q.total > 0:
		return fmt.Sprintf("restarted %d %s", q.total, times(q.total))
	}
	return "ok"
}

func times(n uint64) string {
	if n == 1 {
		return "time"
	}
	return "times"
}
