package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/fwd-project/fwd/internal/replay"
)

// BenchmarkReplay replays every real capture with every rule table:
// go test -run '^$' -bench . ./bench/replay
func BenchmarkReplay(b *testing.B) {
	data := filepath.Join("..", "..", "..", "shared", "data")
	caps, err := loadCaptures(data, nil)
	if err != nil {
		b.Skipf("no captures (../shared/data is absent): %v", err)
	}
	sets, err := loadRuleSets(data, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range sets {
		for _, cp := range caps {
			b.Run(s.name+"/"+cp.name, func(b *testing.B) {
				r := replay.New(s.table, replay.Options{})
				b.ReportAllocs()
				for b.Loop() {
					if err := r.ReplayBytes(cp.name, cp.data); err != nil {
						b.Fatal(err)
					}
				}
				pkts := float64(b.N) * float64(cp.packets)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/pkts, "ns/packet")
				b.ReportMetric(pkts/b.Elapsed().Seconds(), "packets/s")
			})
		}
	}
}

// BenchmarkReplayReader replays the same captures through the io.Reader
// path (pcapgo reading a bytes.Reader, two copies per record), as
// `fwctl replay` reads files, with the largest table:
// go test -run '^$' -bench ReplayReader ./bench/replay
func BenchmarkReplayReader(b *testing.B) {
	data := filepath.Join("..", "..", "..", "shared", "data")
	caps, err := loadCaptures(data, nil)
	if err != nil {
		b.Skipf("no captures (../shared/data is absent): %v", err)
	}
	sets, err := loadRuleSets(data, "")
	if err != nil {
		b.Fatal(err)
	}
	s := sets[len(sets)-1]
	for _, cp := range caps {
		b.Run(s.name+"/"+cp.name, func(b *testing.B) {
			r := replay.New(s.table, replay.Options{})
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Replay(cp.name, bytes.NewReader(cp.data)); err != nil {
					b.Fatal(err)
				}
			}
			pkts := float64(b.N) * float64(cp.packets)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/pkts, "ns/packet")
			b.ReportMetric(pkts/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

// TestBPFExpr checks the tcpdump anchor's filter against the small table.
func TestBPFExpr(t *testing.T) {
	sets, err := loadRuleSets(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	got := bpfExpr(sets[0].file)
	want := "(tcp and (dst portrange 80-80 or dst portrange 443-443))"
	if len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("expression starts %q, want %q", got, want)
	}
}
