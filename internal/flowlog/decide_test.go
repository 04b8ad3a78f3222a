package flowlog_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/flowlog"
	"github.com/fwd-project/fwd/internal/flowlog/flowlogtest"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// TestStalledWriterDoesNotBlockDecide: with the flow log's writer
// stalled and its buffer full, the engine goes on answering packets; the
// lines that do not fit are dropped and counted, and reported in a
// SKIPDATA line once the writer runs.
func TestStalledWriterDoesNotBlockDecide(t *testing.T) {
	dir := t.TempDir()
	rf := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rf, []byte("version: 1\ngroups:\n  - name: web\n    ingress:\n      - {proto: tcp, ports: 80, from: [any]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tbl, err := lifecycle.Compile(rf, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "flows.log")
	l, start, err := flowlog.NewStalled(flowlog.Config{Path: path, Buffer: 16})
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(tbl, engine.Config{OnFlow: func(f engine.Flow) {
		l.Log(flowlog.Record{Time: f.Time, Accept: f.Verdict == verdict.Accept, Proto: f.Proto,
			Src: f.Src, Dst: f.Dst, SrcPort: f.SrcPort, DstPort: f.DstPort, Length: f.Length})
	}})
	w := e.NewWorker(0)
	const n = 1000
	for i := range n {
		port := uint16(80)
		if i%2 == 1 {
			port = 22
		}
		b, err := packettest.Build(packettest.Spec{Src: netip.MustParseAddr("198.18.0.2"), Dst: netip.MustParseAddr("198.18.0.1"),
			Proto: ipproto.TCP, SrcPort: 40000, DstPort: port, TCPFlags: packet.SYN})
		if err != nil {
			t.Fatal(err)
		}
		want := verdict.Accept
		if port == 22 {
			want = verdict.Drop
		}
		if v := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: b}); v != want {
			t.Fatalf("packet %d to %d: %v, want %v", i, port, v, want)
		}
	}
	if st := l.Stats(); st.Dropped != n-16 {
		t.Errorf("dropped %d flow lines, want %d (all but the 16 buffered)", st.Dropped, n-16)
	}
	start()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := flowlogtest.ParseAll(f)
	if err != nil {
		t.Fatal(err)
	}
	var ok, skipped int64
	for _, l := range lines {
		if l.Status == "OK" {
			ok++
		} else if l.Status == "SKIPDATA" {
			skipped += l.Packets
		}
	}
	if ok != 16 || skipped != n-16 {
		t.Errorf("%d flow lines and %d reported skipped, want 16 and %d", ok, skipped, n-16)
	}
}
