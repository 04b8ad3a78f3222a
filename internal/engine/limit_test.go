package engine

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

const limitRules = `version: 1
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [any], limit: {conns: 3, per: 5s}}
      - {proto: tcp, ports: 80, from: [any]}
`

// clock is a settable time for a worker.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func limitedWorker(t *testing.T, body string) (*Engine, *Worker, *clock) {
	t.Helper()
	e, _ := mustEngine(t, body, nil)
	w := e.NewWorker(0)
	c := &clock{t: time.Now()}
	w.now = c.now
	return e, w, c
}

func syn(t *testing.T, src string, port uint16) *nfq.Msg {
	dst := "198.18.0.1"
	if netip.MustParseAddr(src).Is6() {
		dst = "2001:db8::1"
	}
	return &nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", src, dst, port)}
}

// The limit of a rule, as ufw's: conns connections within per, then
// drops (each counted as an attempt) until the peer pauses for per.
func TestLimitWindow(t *testing.T) {
	e, w, c := limitedWorker(t, limitRules)
	a, b := syn(t, "198.18.0.7", 22), syn(t, "198.18.0.8", 22)
	steps := []struct {
		after time.Duration
		m     *nfq.Msg
		want  verdict.Verdict
	}{
		{0, a, verdict.Accept},
		{time.Second, a, verdict.Accept},
		{time.Second, a, verdict.Accept},
		{time.Second, a, verdict.Drop},                // the fourth within 5 s
		{0, b, verdict.Accept},                        // another peer is not braked
		{2500 * time.Millisecond, a, verdict.Drop},    // the first left the window, but the dropped attempts count
		{5 * time.Second, a, verdict.Accept},          // a pause of a whole window
		{0, syn(t, "198.18.0.7", 80), verdict.Accept}, // a rule without a limit
	}
	for i, s := range steps {
		c.add(s.after)
		if got := w.Decide(s.m); got != s.want {
			t.Errorf("step %d: %v, want %v", i, got, s.want)
		}
	}
	if got := w.limitedN.Load(); got != 2 {
		t.Errorf("worker's limited = %d, want 2", got)
	}
	rl, st := e.LimitStatus(e.Table())
	if len(rl) != 1 || rl[0].Limited != 2 || rl[0].Conns != 3 || rl[0].Per != 5*time.Second {
		t.Errorf("LimitStatus = %+v", rl)
	}
	if st.Entries != DefaultLimitEntries {
		t.Errorf("entries = %d", st.Entries)
	}
}

// Status lists the peers over the limit now.
func TestLimitStatusPeers(t *testing.T) {
	e, w, _ := limitedWorker(t, limitRules)
	e.lim.Load().epoch = time.Now().Add(-time.Hour) // the worker's clock is the real one here
	w.now = time.Now
	for range 5 {
		w.Decide(syn(t, "198.18.0.7", 22))
	}
	w.Decide(syn(t, "2001:db8:1:2::9", 22))
	rl, st := e.LimitStatus(e.Table())
	if len(rl) != 1 || rl[0].Over != 1 || fmt.Sprint(rl[0].Peers) != "[198.18.0.7]" {
		t.Errorf("LimitStatus = %+v", rl)
	}
	if st.InUse != 2 {
		t.Errorf("in use = %d, want 2", st.InUse)
	}
}

// An IPv6 peer is counted by its /64.
func TestLimitIPv6Slash64(t *testing.T) {
	_, w, _ := limitedWorker(t, limitRules)
	for i := range 3 {
		if v := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", fmt.Sprintf("2001:db8:1:2::%d", i+1), "2001:db8::1", 22)}); v != verdict.Accept {
			t.Fatalf("attempt %d: %v", i, v)
		}
	}
	if v := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "2001:db8:1:2::99", "2001:db8::1", 22)}); v != verdict.Drop {
		t.Errorf("fourth address of the /64: %v, want drop", v)
	}
	if v := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "2001:db8:1:3::1", "2001:db8::1", 22)}); v != verdict.Accept {
		t.Errorf("another /64: %v, want accept", v)
	}
}

// The table is bounded: more peers than entries evict the least
// recently seen, counted; an evicted peer starts again from zero.
func TestLimitEviction(t *testing.T) {
	lm := newLimiter(8, time.Unix(0, 0))
	if len(lm.entries) != 8 {
		t.Fatalf("entries = %d", len(lm.entries))
	}
	rl := ruleLimit{key: ruleKey("sgr-000000000001"), conns: 1, per: 50}
	peer := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }
	for i := range 100 {
		if lm.over(rl, peer(i), uint32(10+i)) {
			t.Fatalf("peer %d over on its first attempt", i)
		}
	}
	if lm.evicted.Load() == 0 {
		t.Error("no evictions counted with 100 peers in 8 entries")
	}
	if n := lm.inUse(time.Unix(0, 0).Add(109 * limitTick)); n > 8 {
		t.Errorf("in use %d > 8", n)
	}
	// The latest peer is still tracked: its second attempt is over.
	if !lm.over(rl, peer(99), 110) {
		t.Error("the latest peer was forgotten")
	}
	// An expired entry is taken before a live one.
	before := lm.evicted.Load()
	lm.over(rl, peer(500), 10000)
	if lm.evicted.Load() != before {
		t.Error("an eviction counted when every window had passed")
	}
}

func TestLimitNoAllocs(t *testing.T) {
	_, w, _ := limitedWorker(t, limitRules)
	w.now = time.Now
	for _, m := range []*nfq.Msg{syn(t, "198.18.0.7", 22), syn(t, "2001:db8::7", 22)} {
		for range 10 {
			w.Decide(m)
		}
		if n := testing.AllocsPerRun(200, func() { w.Decide(m) }); n != 0 {
			t.Errorf("%v allocs per limited Decide, want 0", n)
		}
	}
}

// Workers share the table: a peer's connections count once whichever
// queue they come through, and concurrent use is race-free.
func TestLimitConcurrent(t *testing.T) {
	e, _, _ := limitedWorker(t, limitRules)
	const workers, each = 4, 200
	var wg sync.WaitGroup
	var accepted [workers]int
	for i := range workers {
		w := e.NewWorker(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				// One peer on all workers, and peers of their own.
				if w.Decide(syn(t, "198.18.0.7", 22)) == verdict.Accept {
					accepted[i]++
				}
				w.Decide(syn(t, fmt.Sprintf("198.18.%d.%d", 1+i, j), 22))
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range accepted {
		total += n
	}
	// Within one window: 3, give or take the race the shared entry
	// admits at one instant (one per worker at most).
	if total < 3 || total > 3+workers {
		t.Errorf("the shared peer got %d connections through, want 3 (to %d)", total, 3+workers)
	}
	rl, _ := e.LimitStatus(e.Table())
	if rl[0].Limited == 0 {
		t.Error("no limited flows counted")
	}
}

// A reload that keeps the rule keeps its peers' history and its count;
// one that changes what the rule allows starts both again.
func TestLimitSurvivesSwap(t *testing.T) {
	e, w, _ := limitedWorker(t, limitRules)
	w.now = time.Now
	for range 4 {
		w.Decide(syn(t, "198.18.0.7", 22))
	}
	// Same rule, another rule added and the order changed.
	swapTo(t, e, `version: 1
groups:
  - name: ssh
    ingress:
      - {proto: udp, ports: 53, from: [any]}
      - {proto: tcp, ports: 80, from: [any]}
      - {proto: tcp, ports: 22, from: [any], limit: {conns: 3, per: 5s}, description: kept}
`)
	if v := w.Decide(syn(t, "198.18.0.7", 22)); v != verdict.Drop {
		t.Errorf("after a reload that kept the rule: %v, want drop", v)
	}
	if rl, _ := e.LimitStatus(e.Table()); len(rl) != 1 || rl[0].Limited != 2 {
		t.Errorf("limited after the swap = %+v, want 2 (1 carried)", rl)
	}
	swapTo(t, e, `version: 1
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: [22, 2222], from: [any], limit: {conns: 3, per: 5s}}
`)
	if v := w.Decide(syn(t, "198.18.0.7", 22)); v != verdict.Accept {
		t.Errorf("after a reload that changed the rule: %v, want accept", v)
	}
	if rl, _ := e.LimitStatus(e.Table()); len(rl) != 1 || rl[0].Limited != 0 {
		t.Errorf("limited after the second swap = %+v, want 0", rl)
	}
}

func swapTo(t *testing.T, e *Engine, body string) {
	t.Helper()
	p := writeRules(t, t.TempDir(), body)
	tbl, err := lifecycle.Compile(p, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Swap(tbl)
}
