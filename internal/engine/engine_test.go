package engine

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/flowlog"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

const webRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: tcp, ports: 8080, from: [198.18.0.2]}
      - {proto: udp, ports: 5353, from: [2001:db8::/32]}
      - {proto: icmp, icmp: {type: 8}, from: [any]}
    egress:
      - {proto: tcp, ports: 9000, to: [198.18.0.0/24]}
`

func writeRules(t testing.TB, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustEngine(t testing.TB, body string, log *slog.Logger) (*Engine, string) {
	t.Helper()
	p := writeRules(t, t.TempDir(), body)
	tbl, err := lifecycle.Compile(p, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return New(tbl, Config{Log: log}), p
}

// pkt builds the bytes of a packet as the queue hands them over.
func pkt(t testing.TB, proto string, src, dst string, dport uint16) []byte {
	t.Helper()
	p, err := ipproto.Parse(proto)
	if err != nil {
		t.Fatal(err)
	}
	s := packettest.Spec{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: p,
		SrcPort: 40000, DstPort: dport, TCPFlags: packet.SYN, ICMPType: uint8(dport), ICMPRest: 1 << 16, Payload: []byte("x")}
	b, err := packettest.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type decideCase struct {
	name   string
	hook   uint8
	data   []byte
	want   verdict.Verdict
	reason string // for drops
}

func decideCases(t testing.TB) []decideCase {
	in, out := nfq.HookLocalIn, nfq.HookLocalOut
	return []decideCase{
		{"http from anywhere", in, pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 80), verdict.Accept, ""},
		{"https over ipv6", in, pkt(t, "tcp", "2001:db8::9", "2001:db8::1", 443), verdict.Accept, ""},
		{"8080 from the allowed address", in, pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 8080), verdict.Accept, ""},
		{"8080 from another address", in, pkt(t, "tcp", "198.18.0.3", "198.18.0.1", 8080), verdict.Drop, ReasonNoMatch},
		{"22 not allowed", in, pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 22), verdict.Drop, ReasonNoMatch},
		{"udp 5353 from v6 range", in, pkt(t, "udp", "2001:db8:1::5", "2001:db8::1", 5353), verdict.Accept, ""},
		{"udp 5353 from v4", in, pkt(t, "udp", "198.18.0.2", "198.18.0.1", 5353), verdict.Drop, ReasonNoMatch},
		{"ping", in, pkt(t, "icmp", "198.18.0.2", "198.18.0.1", 8), verdict.Accept, ""},
		{"egress allowed", out, pkt(t, "tcp", "198.18.0.1", "198.18.0.9", 9000), verdict.Accept, ""},
		{"egress other port", out, pkt(t, "tcp", "198.18.0.1", "198.18.0.9", 9001), verdict.Drop, ReasonNoMatch},
		{"egress other peer", out, pkt(t, "tcp", "198.18.0.1", "198.18.1.9", 9000), verdict.Drop, ReasonNoMatch},
		{"ingress to 9000 is not egress", in, pkt(t, "tcp", "198.18.0.9", "198.18.0.1", 9000), verdict.Drop, ReasonNoMatch},
		{"garbage", in, []byte{0x45, 0, 0}, verdict.Drop, ReasonUndecodable},
		{"empty", in, nil, verdict.Drop, ReasonUndecodable},
	}
}

func TestDecide(t *testing.T) {
	var logBuf bytes.Buffer
	e, _ := mustEngine(t, webRules, slog.New(slog.NewTextHandler(&logBuf, nil)))
	w := e.NewWorker(0)
	var accepted, dropped uint64
	for _, c := range decideCases(t) {
		t.Run(c.name, func(t *testing.T) {
			logBuf.Reset()
			got := w.Decide(&nfq.Msg{ID: 1, Hook: c.hook, Payload: c.data})
			if got != c.want {
				t.Errorf("verdict %v, want %v", got, c.want)
			}
			if c.want == verdict.Accept {
				accepted++
				if logBuf.Len() != 0 {
					t.Errorf("accept logged: %s", logBuf.String())
				}
				return
			}
			dropped++
			if !strings.Contains(logBuf.String(), "reason="+c.reason) {
				t.Errorf("drop log %q lacks reason=%s", logBuf.String(), c.reason)
			}
		})
	}
	if a := w.accepted.Load(); a != accepted {
		t.Errorf("accepted counter %d, want %d", a, accepted)
	}
	if d := w.noMatch.Load() + w.undecodable.Load(); d != dropped {
		t.Errorf("drop counters %d, want %d", d, dropped)
	}
	if u := w.undecodable.Load(); u != 2 {
		t.Errorf("undecodable counter %d, want 2", u)
	}
}

func TestDecideWithoutTableDrops(t *testing.T) {
	e := New(nil, Config{})
	w := e.NewWorker(0)
	if v := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 80)}); v != verdict.Drop {
		t.Errorf("verdict %v without a table, want drop", v)
	}
	if w.noTable.Load() != 1 {
		t.Errorf("no-table counter %d, want 1", w.noTable.Load())
	}
}

// TestDecideAllocs: the hot path allocates nothing, accepting or dropping
// (once the drop log's rate limit is used up), with the flow hook off and
// on: handing records to a flow log that takes them, and to one whose
// buffer is full.
func TestDecideAllocs(t *testing.T) {
	for _, hook := range []struct {
		name   string
		buffer int // of the flow log; 0: no flow log
	}{{"no flow log", 0}, {"flow log", 1 << 16}, {"flow log full", 1}} {
		e, _ := mustEngine(t, webRules, slog.New(slog.DiscardHandler))
		if hook.buffer > 0 {
			e.cfg.OnFlow = openFlowLog(t, flowlog.Config{Buffer: hook.buffer, Rate: 100})
		}
		w := e.NewWorker(0)
		fixed := time.Unix(1000, 0)
		w.now = func() time.Time { return fixed }
		for _, c := range decideCases(t) {
			m := &nfq.Msg{ID: 1, Hook: c.hook, Payload: c.data}
			for range 2 * e.cfg.DropLogBurst {
				w.Decide(m)
			}
			if n := testing.AllocsPerRun(200, func() { w.Decide(m) }); n != 0 {
				t.Errorf("%s, %s: %v allocs per Decide, want 0", hook.name, c.name, n)
			}
		}
	}
}

func TestDropLogRateLimit(t *testing.T) {
	var logBuf bytes.Buffer
	e, _ := mustEngine(t, webRules, slog.New(slog.NewTextHandler(&logBuf, nil)))
	e.cfg.DropLogBurst, e.cfg.DropLogEvery = 3, time.Second
	w := e.NewWorker(0)
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	m := &nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.18.0.3", "198.18.0.1", 22)}
	for range 100 {
		w.Decide(m)
	}
	if n := strings.Count(logBuf.String(), "msg=dropped"); n != 3 {
		t.Errorf("%d drop lines in one interval, want 3", n)
	}
	if w.logSkipped.Load() != 97 {
		t.Errorf("skipped %d, want 97", w.logSkipped.Load())
	}
	logBuf.Reset()
	now = now.Add(time.Second)
	w.Decide(m)
	if !strings.Contains(logBuf.String(), "not_logged_before=97") {
		t.Errorf("next line does not report the 97 skipped: %s", logBuf.String())
	}
	for _, want := range []string{"peer=198.18.0.3", "port=22", "proto=tcp", "dir=in"} {
		if !strings.Contains(logBuf.String(), want) {
			t.Errorf("drop line lacks %s: %s", want, logBuf.String())
		}
	}
}

// TestSwap: workers answer from the table swapped in, and Load refuses a
// bad file with every error. (All-or-nothing reloads, no-ops on unchanged
// files and the like are the reload service's, tested in package control.)
func TestSwap(t *testing.T) {
	e, path := mustEngine(t, webRules, nil)
	w := e.NewWorker(0)
	http := &nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 80)}
	ssh := &nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 22)}

	bad := strings.Replace(webRules, "ports: [80, 443]", "ports: [80, 70000]", 1) + "  - name: web\n"
	writeRules(t, filepath.Dir(path), bad)
	_, err := lifecycle.Compile(path, rules.Options{})
	var el rules.ErrorList
	if !errors.As(err, &el) || len(el) < 2 {
		t.Fatalf("bad file: err %v, want a rules.ErrorList with every error", err)
	}
	if w.Decide(http) != verdict.Accept {
		t.Fatal("the live table changed")
	}

	writeRules(t, filepath.Dir(path), strings.Replace(webRules, "ports: [80, 443]", "ports: [22]", 1))
	next, err := lifecycle.Compile(path, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Swap(next)
	if e.Table() != next || w.Decide(http) != verdict.Drop || w.Decide(ssh) != verdict.Accept {
		t.Error("new table not in use")
	}
	if _, err := lifecycle.Compile(filepath.Join(t.TempDir(), "missing.yaml"), rules.Options{}); err == nil {
		t.Error("loading a missing file succeeded")
	}
}

// TestSwapWhileDeciding runs readers against a swapping writer (-race
// checks the swap) and checks every verdict: table A allows port 80 and
// not 22, table B the reverse, and each swap publishes a table of its
// own, so that a table names its generation. Around each Decide a worker
// reads the live table before and after; the verdict must be what one of
// the tables live in between says (the one table, when no swap happened
// meanwhile). The writer moves on only once some worker has decided with
// a generation live throughout, so every generation is checked that way.
func TestSwapWhileDeciding(t *testing.T) {
	webB := strings.Replace(webRules, "ports: [80, 443]", "ports: [22]", 1)
	const generations = 50
	tables := make([]*filter.Table, generations)
	gen := map[*filter.Table]int{}
	for i := range tables {
		body := webRules
		if i%2 == 1 {
			body = webB
		}
		tbl, err := lifecycle.Compile(writeRules(t, t.TempDir(), body), rules.Options{})
		if err != nil {
			t.Fatal(err)
		}
		tables[i], gen[tbl] = tbl, i
	}
	msgs := []*nfq.Msg{
		{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 80)},
		{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 22)},
	}
	// want[m][g] is table g's verdict on message m, by filter.Table.Match.
	want := make([][]verdict.Verdict, len(msgs))
	for i, m := range msgs {
		var d packet.Decoder
		var p packet.Packet
		d.Decode(m.Payload, &p)
		for _, tbl := range tables {
			v := verdict.Drop
			if tbl.Match(filter.KeyOf(&p, direction.Ingress)).Accepted() {
				v = verdict.Accept
			}
			want[i] = append(want[i], v)
		}
		if want[i][0] == want[i][1] {
			t.Fatalf("message %d: tables A and B agree (%v): the test cannot tell them apart", i, want[i][0])
		}
	}

	e := New(tables[0], Config{})
	var stable [generations]atomic.Uint64 // decides with generation g live throughout
	var bad atomic.Uint64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 4 {
		w := e.NewWorker(i)
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				mi := (n + i) % len(msgs)
				before := gen[e.Table()]
				got := w.Decide(msgs[mi])
				after := gen[e.Table()]
				if after < before {
					t.Errorf("generation went back from %d to %d", before, after)
					bad.Add(1)
					return
				}
				if !slices.Contains(want[mi][before:after+1], got) {
					t.Errorf("message %d decided %v while generations %d to %d were live, which say %v",
						mi, got, before, after, want[mi][before:after+1])
					bad.Add(1)
					return
				}
				if before == after {
					stable[before].Add(1)
				}
			}
		})
	}
	for g := range tables {
		if g > 0 {
			e.Swap(tables[g])
		}
		for stable[g].Load() == 0 && bad.Load() == 0 {
			runtime.Gosched()
		}
	}
	close(stop)
	wg.Wait()
	if e.Table() != tables[generations-1] {
		t.Error("the last swap is not live")
	}
}

func TestRestrictsEgress(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"egress omitted", "version: 1\ngroups:\n  - name: a\n    ingress: []\n", false},
		{"one group omits", "version: 1\ngroups:\n  - name: a\n    egress: []\n  - name: b\n", false},
		{"no egress at all", "version: 1\ngroups:\n  - name: a\n    egress: []\n", true},
		{"all to any", "version: 1\ngroups:\n  - name: a\n    egress: [{proto: all, to: [any]}]\n", false},
		{"all to v4 only", "version: 1\ngroups:\n  - name: a\n    egress: [{proto: all, to: [0.0.0.0/0]}]\n", true},
		{"tcp to any", "version: 1\ngroups:\n  - name: a\n    egress: [{proto: tcp, to: [any]}]\n", true},
		{"split over groups", "version: 1\ngroups:\n  - name: a\n    egress: [{proto: all, to: [0.0.0.0/0]}]\n  - name: b\n    egress: [{proto: -1, to: ['::/0']}]\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := rules.Parse("t.yaml", []byte(tt.body), rules.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := RestrictsEgress(f); got != tt.want {
				t.Errorf("RestrictsEgress = %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeQueue is an nfq.Queue fed by the test.
type fakeQueue struct {
	h        nfq.Handler
	startErr error
	closed   bool
}

func (q *fakeQueue) Start(h nfq.Handler) error {
	if q.startErr != nil {
		return q.startErr
	}
	q.h = h
	return nil
}
func (q *fakeQueue) Close() error     { q.closed = true; return nil }
func (q *fakeQueue) Stats() nfq.Stats { return nfq.Stats{Received: 7} }

func TestStartStop(t *testing.T) {
	e, _ := mustEngine(t, webRules, nil)
	qs := []*fakeQueue{{}, {}}
	if err := e.Start([]nfq.Queue{qs[0], qs[1]}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(nil); err == nil {
		t.Error("second Start succeeded")
	}
	http := pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 80)
	ssh := pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 22)
	if qs[0].h(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: http}) != verdict.Accept || qs[1].h(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: ssh}) != verdict.Drop {
		t.Error("queue handlers answer wrongly")
	}
	s := e.Stats()
	if s.Accepted != 1 || s.DroppedNoMatch != 1 || s.Workers != 2 || s.Queue.Received != 14 {
		t.Errorf("stats %+v", s)
	}
	if err := e.Stop(); err != nil || !qs[0].closed || !qs[1].closed {
		t.Errorf("Stop: %v, closed %v %v", err, qs[0].closed, qs[1].closed)
	}

	e2, _ := mustEngine(t, webRules, nil)
	ok, broken := &fakeQueue{}, &fakeQueue{startErr: errors.New("no such queue")}
	if err := e2.Start([]nfq.Queue{ok, broken}); err == nil {
		t.Fatal("Start with a broken queue succeeded")
	}
	if !ok.closed {
		t.Error("the queue started before the failure was not closed")
	}
}

func BenchmarkDecide(b *testing.B) {
	e, _ := mustEngine(b, webRules, slog.New(slog.DiscardHandler))
	w := e.NewWorker(0)
	m := &nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(b, "tcp", "198.19.7.7", "198.18.0.1", 443)}
	b.ReportAllocs()
	for b.Loop() {
		w.Decide(m)
	}
}

func TestRuleHits(t *testing.T) {
	e, _ := mustEngine(t, webRules, nil)
	w := e.NewWorker(0)
	http := &nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 80)}
	alt := &nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 8080)}
	ssh := &nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 22)}
	for _, m := range []*nfq.Msg{http, http, http, alt, ssh} {
		w.Decide(m)
	}
	live := e.Table()
	hits := e.RuleHits(live)
	rule := func(r int32) filter.Result {
		return filter.Result{Verdict: verdict.Accept, Dir: direction.Ingress, Group: 0, Rule: r}
	}
	if hits[rule(0)] != 3 || hits[rule(1)] != 1 || hits[rule(2)] != 0 || len(hits) != 5 {
		t.Errorf("hits = %v, want 3 on rule 0, 1 on rule 1, five rules listed", hits)
	}
	// Counts are read with the table they belong to; a swap to the same
	// rules carries them.
	other, err := filter.Compile(live.File())
	if err != nil {
		t.Fatal(err)
	}
	if e.RuleHits(other) != nil {
		t.Error("RuleHits answered for a table that is not live")
	}
	e.Swap(other)
	if got := e.RuleHits(other)[rule(0)]; got != 3 {
		t.Errorf("after a swap to the same rules rule 0 has %d hits, want 3", got)
	}
	if e.RuleHits(live) != nil {
		t.Error("RuleHits still answers for the old table")
	}
}
