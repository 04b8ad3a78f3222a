package queuewatch

import (
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestObserve is the stall detector's table: a sequence of samples of
// one queue (the kernel's waiting count and the reader's received
// count) and the action after each.
func TestObserve(t *testing.T) {
	s := func(waiting uint32, received uint64) Sample { return Sample{Waiting: waiting, Received: received} }
	for _, tc := range []struct {
		name    string
		samples []Sample
		want    []Action
	}{
		{"idle: nothing waiting", []Sample{s(0, 5), s(0, 5), s(0, 5), s(0, 5)}, []Action{None, None, None, None}},
		{"busy: reader takes packets", []Sample{s(3, 5), s(4, 9), s(2, 20), s(7, 31)}, []Action{None, None, None, None}},
		{"stalled three checks", []Sample{s(1, 5), s(1, 5), s(2, 5), s(9, 5)}, []Action{None, None, None, Restart}},
		{"stall broken by progress", []Sample{s(1, 5), s(1, 5), s(1, 5), s(1, 6), s(1, 6), s(1, 6)}, []Action{None, None, None, None, None, None}},
		{"stall broken by an empty queue", []Sample{s(1, 5), s(1, 5), s(0, 5), s(1, 5), s(1, 5)}, []Action{None, None, None, None, None}},
		{"first sample alone is no stall", []Sample{s(100, 0)}, []Action{None}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := New(1, Config{Checks: 3})
			for i, sm := range tc.samples {
				if got := w.Observe(0, sm); got != tc.want[i] {
					t.Fatalf("sample %d %+v: %v, want %v", i, sm, got, tc.want[i])
				}
			}
		})
	}
}

// TestGiveUp: a queue that stalls again after MaxRestarts restarts
// within Window is given up; restarts older than Window do not count.
// Health follows.
func TestGiveUp(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	w := New(2, Config{Checks: 2, MaxRestarts: 2, Window: time.Minute, Now: clk.now})
	stall := func() Action {
		t.Helper()
		var a Action
		for range 3 { // a first sample, then two stalled checks
			a = w.Observe(1, Sample{Waiting: 1, Received: 0})
		}
		return a
	}
	if h := w.Health(1); h != "ok" {
		t.Fatalf("health %q, want ok", h)
	}
	if a := stall(); a != Restart {
		t.Fatalf("first stall: %v, want Restart", a)
	}
	if h := w.Health(1); h != "stalled" {
		t.Fatalf("health %q, want stalled", h)
	}
	w.Restarted(1)
	if h := w.Health(1); h != "restarted 1 time" {
		t.Fatalf("health %q, want restarted 1 time", h)
	}
	clk.t = clk.t.Add(10 * time.Second)
	if a := stall(); a != Restart {
		t.Fatalf("second stall: %v, want Restart", a)
	}
	w.Restarted(1)
	clk.t = clk.t.Add(10 * time.Second)
	if a := stall(); a != GiveUp {
		t.Fatalf("third stall within a minute: %v, want GiveUp", a)
	}
	clk.t = clk.t.Add(time.Minute)
	if a := stall(); a != Restart {
		t.Fatalf("a stall a minute later: %v, want Restart", a)
	}
	w.Restarted(1)
	if w.Restarts(1) != 3 || w.Health(1) != "restarted 3 times" || w.Restarts(0) != 0 || w.Health(0) != "ok" {
		t.Fatalf("restarts %d (%s), queue 0 %d (%s)", w.Restarts(1), w.Health(1), w.Restarts(0), w.Health(0))
	}
}
