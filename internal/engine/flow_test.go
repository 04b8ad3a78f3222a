package engine

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/flowlog"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// openFlowLog opens a flow log in the test's directory and returns the
// hook that feeds it, as fwd does; the test's end closes it.
func openFlowLog(t *testing.T, cfg flowlog.Config) FlowFunc {
	t.Helper()
	cfg.Path = filepath.Join(t.TempDir(), "flows.log")
	l, err := flowlog.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return func(f Flow) {
		l.Log(flowlog.Record{Time: f.Time, Accept: f.Verdict == verdict.Accept, Proto: f.Proto,
			Src: f.Src, Dst: f.Dst, SrcPort: f.SrcPort, DstPort: f.DstPort, Length: f.Length})
	}
}

// TestOnFlow: every decodable packet decided reaches the hook once, with
// its verdict, addresses, ports and reason; undecodable ones do not.
func TestOnFlow(t *testing.T) {
	var got []Flow
	e, _ := mustEngine(t, webRules, slog.New(slog.DiscardHandler))
	e.cfg.OnFlow = func(f Flow) { got = append(got, f) }
	w := e.NewWorker(0)
	now := time.Unix(1700000000, 0)
	w.now = func() time.Time { return now }
	for _, c := range decideCases(t) {
		got = got[:0]
		w.Decide(&nfq.Msg{Hook: c.hook, Payload: c.data})
		if c.reason == ReasonUndecodable {
			if len(got) != 0 {
				t.Errorf("%s: undecodable packet reported: %+v", c.name, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s: %d flows reported, want 1", c.name, len(got))
			continue
		}
		f := got[0]
		var p = w.pkt
		wantDir := direction.Ingress
		if c.hook == nfq.HookLocalOut {
			wantDir = direction.Egress
		}
		if f.Verdict != c.want || f.Reason != c.reason || f.Dir != wantDir || !f.Time.Equal(now) ||
			f.Src != p.Src || f.Dst != p.Dst || f.Proto != p.Proto || f.Length != len(c.data) {
			t.Errorf("%s: reported %+v, want verdict %v reason %q dir %v from the packet %v -> %v",
				c.name, f, c.want, c.reason, wantDir, p.Src, p.Dst)
		}
		if p.Proto.HasPorts() && (f.SrcPort != 40000 || f.DstPort != p.DstPort) {
			t.Errorf("%s: ports %d -> %d, want 40000 -> %d", c.name, f.SrcPort, f.DstPort, p.DstPort)
		}
		if !p.Proto.HasPorts() && (f.SrcPort != 0 || f.DstPort != 0) {
			t.Errorf("%s: ports %d -> %d for %v, want 0", c.name, f.SrcPort, f.DstPort, p.Proto)
		}
		if c.want == verdict.Accept && e.Table().Slot(f.Result) < 0 {
			t.Errorf("%s: accept reported without its rule: %+v", c.name, f.Result)
		}
	}
}

// TestOnFlowWithoutTable: fail-closed drops are reported too.
func TestOnFlowWithoutTable(t *testing.T) {
	var got []Flow
	e := New(nil, Config{OnFlow: func(f Flow) { got = append(got, f) }})
	w := e.NewWorker(0)
	w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 80)})
	if len(got) != 1 || got[0].Verdict != verdict.Drop || got[0].Reason != ReasonNoTable || got[0].DstPort != 80 {
		t.Errorf("reported %+v, want one no-table drop to port 80", got)
	}
}
