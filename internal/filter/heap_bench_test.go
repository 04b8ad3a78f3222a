package filter

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// oneRule is the smallest real table: one ingress rule, egress omitted
// (AWS's default: all outbound allowed).
const oneRule = `version: 1
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [10.0.0.0/8]}
`

// BenchmarkTableHeap reports the heap a compiled table keeps, without
// its rules file (parsed before the measurement): heap-B, from
// runtime.MemStats after a GC, and est-B, Table.MemoryBytes.
//
//	go test -run '^$' -bench TableHeap ./internal/filter
func BenchmarkTableHeap(b *testing.B) {
	tables := append([]benchTable{{"one-rule", []byte(oneRule)}}, benchTables(b)...)
	for _, bt := range tables {
		b.Run(bt.name, func(b *testing.B) {
			f, err := rules.Parse("bench.yaml", bt.yaml, rules.Options{MaxRules: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			var heap uint64
			var est int
			for b.Loop() {
				heap, est = compiledHeap(b, f)
			}
			b.ReportMetric(float64(heap), "heap-B")
			b.ReportMetric(float64(est), "est-B")
		})
	}
}

// compiledHeap compiles f and returns the heap the table adds, measured
// with runtime.MemStats, and its own estimate.
func compiledHeap(b testing.TB, f *rules.File) (uint64, int) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab, err := Compile(f)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	est := tab.MemoryBytes()
	runtime.KeepAlive(tab)
	if after.HeapAlloc < before.HeapAlloc {
		return 0, est
	}
	return after.HeapAlloc - before.HeapAlloc, est
}

// TestV4IndexBySize checks which IPv4 index a protocol gets (the ranges
// up to maxV4Ranges, the /16 array beyond), that both agree with the
// reference matcher around the boundary, and that a one-rule table
// stays small.
func TestV4IndexBySize(t *testing.T) {
	tests := []struct {
		prefixes int
		wantL1   bool
	}{
		{1, false},
		{(maxV4Ranges - 1) / 2, false},
		{(maxV4Ranges + 1) / 2, true},
		{600, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.prefixes), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tt.prefixes), 3))
			f := &rules.File{Version: 1, Groups: []rules.Group{{Name: "g"}}}
			seen := map[netip.Prefix]bool{}
			for len(seen) < tt.prefixes {
				rule := randomRule(r)
				rule.Proto = rules.Proto{Num: ipproto.TCP}
				rule.Ports = []rules.PortRange{{Lo: uint16(1 + r.IntN(1000)), Hi: uint16(1000 + r.IntN(1000))}}
				rule.ICMP = nil
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}), r.IntN(33)).Masked()
				if seen[p] {
					continue
				}
				seen[p] = true
				rule.Prefixes, rule.Peers = []netip.Prefix{p}, []string{p.String()}
				f.Groups[0].Ingress = append(f.Groups[0].Ingress, rule)
			}
			tab := compile(t, f)
			pt := tab.dirs[direction.Ingress].byProto[ipproto.TCP]
			if gotL1 := pt.l1 != nil; gotL1 != tt.wantL1 || gotL1 == (pt.v4 != nil) {
				t.Fatalf("%d prefixes: /16 array %v, ranges %v; want the array %v", tt.prefixes, gotL1, pt.v4 != nil, tt.wantL1)
			}
			for range 20000 {
				k := randomKey(r, f)
				k.Dir = direction.Ingress
				if got, want := tab.Match(k), refMatch(f, k); got != want {
					t.Fatalf("Match(%+v) = %+v, reference says %+v", k, got, want)
				}
			}
		})
	}
	f, err := rules.Parse("one.yaml", []byte(oneRule), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := compile(t, f).MemoryBytes(); n > 16<<10 {
		t.Errorf("a one-rule table holds %d bytes, want at most 16 KiB", n)
	}
}
