package engine

import (
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// recorder is a DropRecorder that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []DropEvent
}

func (r *recorder) RecordDrop(ev DropEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// metricsEngine is an engine configured as fwd --metrics configures it:
// every Decide timed, every logged drop recorded.
func metricsEngine(t *testing.T, every uint32) (*Engine, *recorder) {
	t.Helper()
	e, _ := mustEngine(t, webRules, slog.New(slog.DiscardHandler))
	rec := &recorder{}
	e.cfg.LatencySampleEvery, e.cfg.Drops = every, rec
	return e, rec
}

// TestDecideAllocsWithMetrics: with latency sampling on every packet and
// a drop recorder, the hot path still allocates nothing.
func TestDecideAllocsWithMetrics(t *testing.T) {
	e, _ := metricsEngine(t, 1)
	w := e.NewWorker(0)
	fixed := time.Unix(1000, 0)
	w.now = func() time.Time { return fixed }
	for _, c := range decideCases(t) {
		m := &nfq.Msg{ID: 1, Hook: c.hook, Payload: c.data}
		for range 2 * e.cfg.DropLogBurst {
			w.Decide(m)
		}
		if n := testing.AllocsPerRun(200, func() { w.Decide(m) }); n != 0 {
			t.Errorf("%s: %v allocs per Decide with metrics on, want 0", c.name, n)
		}
	}
	if s := e.Stats(); s.Latency.Samples() != 0 {
		t.Errorf("engine stats count %d latency samples of a worker it did not start, want 0", s.Latency.Samples())
	}
}

func TestLatencySampling(t *testing.T) {
	for _, c := range []struct {
		every, decides uint32
		want           uint64
	}{
		{every: 0, decides: 100, want: 0},
		{every: 1, decides: 100, want: 100},
		{every: 10, decides: 100, want: 10},
		{every: 64, decides: 100, want: 1},
	} {
		e, _ := metricsEngine(t, c.every)
		w := e.NewWorker(0)
		m := &nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 80)}
		for range c.decides {
			w.Decide(m)
		}
		var l Latency
		w.lat.addTo(&l)
		if got := l.Samples(); got != c.want {
			t.Errorf("every %d, %d decides: %d samples, want %d", c.every, c.decides, got, c.want)
		}
		if c.want > 0 && l.Sum <= 0 {
			t.Errorf("every %d: %d samples summing to %v", c.every, l.Samples(), l.Sum)
		}
	}
}

func TestLatencyBuckets(t *testing.T) {
	var h latencyHist
	for _, d := range []time.Duration{0, 250, 251, time.Microsecond, time.Second} {
		h.observe(d)
	}
	var l Latency
	h.addTo(&l)
	want := Latency{Sum: 1000 + 250 + 251 + time.Second}
	want.Counts[0] = 2                  // 0 and 250ns: bounds are inclusive
	want.Counts[1] = 1                  // 251ns
	want.Counts[2] = 1                  // 1µs
	want.Counts[len(LatencyBounds)] = 1 // slower than every bound
	if l != want {
		t.Errorf("histogram %+v, want %+v", l, want)
	}
}

// TestDropRecorder: the drops the log logs reach the recorder, as
// values; those the rate limit holds back do not.
func TestDropRecorder(t *testing.T) {
	e, rec := metricsEngine(t, 0)
	e.cfg.DropLogBurst = 2
	w := e.NewWorker(3)
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	in := &nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.18.0.3", "198.18.0.1", 22)}
	out := &nfq.Msg{Hook: nfq.HookLocalOut, Payload: pkt(t, "tcp", "198.18.0.1", "198.18.1.9", 9001)}
	w.Decide(in)
	w.Decide(out)
	w.Decide(in) // over the burst: counted, not recorded
	want := []DropEvent{
		{Time: now, Dir: direction.Ingress, Peer: netip.MustParseAddr("198.18.0.3"), Proto: 6, Port: 22, Reason: ReasonNoMatch, Worker: 3},
		{Time: now, Dir: direction.Egress, Peer: netip.MustParseAddr("198.18.1.9"), Proto: 6, Port: 9001, Reason: ReasonNoMatch, Worker: 3},
	}
	if len(rec.events) != len(want) {
		t.Fatalf("recorded %d drops, want %d: %+v", len(rec.events), len(want), rec.events)
	}
	for i := range want {
		if rec.events[i] != want[i] {
			t.Errorf("drop %d: %+v, want %+v", i, rec.events[i], want[i])
		}
	}
}
