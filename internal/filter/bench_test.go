package filter

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/classbench"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

var (
	classbenchDir = flag.String("classbench", "../../../shared/data/classbench", "directory of ClassBench filter sets for the benchmarks")
	rulesFile     = flag.String("rules", "", "also benchmark this rules file")
)

// synthYAML writes a rules file of n ingress rules shaped like a real
// host's: mostly single service ports, some ranges, a few all-protocol
// rules, sources from /8 to /32 over IPv4 and IPv6, spread over groups.
func synthYAML(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	b.WriteString("version: 1\ngroups:\n")
	perGroup := 500
	for i := range n {
		if i%perGroup == 0 {
			fmt.Fprintf(&b, "  - name: g%d\n    ingress:\n", i/perGroup)
		}
		proto := []string{"tcp", "tcp", "tcp", "udp", "udp", "icmp", "all"}[r.IntN(7)]
		fmt.Fprintf(&b, "      - {proto: %s", proto)
		switch proto {
		case "tcp", "udp":
			if r.IntN(5) == 0 {
				lo := 1 + r.IntN(60000) // port 0 is no service
				fmt.Fprintf(&b, ", ports: \"%d-%d\"", lo, lo+r.IntN(5000))
			} else {
				fmt.Fprintf(&b, ", ports: %d", 1+r.IntN(65535))
			}
		case "icmp":
			fmt.Fprintf(&b, ", icmp: {type: %d}", r.IntN(20))
		}
		fmt.Fprintf(&b, ", from: [%s]}\n", synthPrefix(r))
	}
	return b.Bytes()
}

func synthPrefix(r *rand.Rand) netip.Prefix {
	if r.IntN(4) == 0 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), 15: byte(r.IntN(256))})
		return netip.PrefixFrom(a, 32+r.IntN(97)).Masked()
	}
	a := netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	return netip.PrefixFrom(a, 8+r.IntN(25)).Masked()
}

// classbenchYAML converts a ClassBench filter set into a rules file (see
// package classbench) and says how many rules it holds.
func classbenchYAML(path string) ([]byte, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	boxes, err := classbench.Parse(f)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	var b bytes.Buffer
	if err := classbench.ToRulesYAML(boxes, &b); err != nil {
		return nil, 0, err
	}
	return b.Bytes(), bytes.Count(b.Bytes(), []byte("\n      - {")), nil
}

type benchTable struct {
	name string
	yaml []byte
}

func benchTables(b *testing.B) []benchTable {
	var out []benchTable
	for _, n := range []int{10, 1000, 10000, 100000} {
		out = append(out, benchTable{fmt.Sprintf("synth-%d", n), synthYAML(n, uint64(n))})
	}
	if _, err := os.Stat(*classbenchDir); err != nil {
		b.Logf("ClassBench sets not found at %s (pass -classbench DIR): benchmarking synthetic tables only", *classbenchDir)
	} else {
		for _, name := range []string{"acl1_1k", "acl1_10k", "fw1_10k", "ipc1_10k"} {
			y, _, err := classbenchYAML(filepath.Join(*classbenchDir, name))
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, benchTable{"classbench-" + name, y})
		}
	}
	if *rulesFile != "" {
		y, err := os.ReadFile(*rulesFile)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, benchTable{"file-" + filepath.Base(*rulesFile), y})
	}
	return out
}

func mustTable(b testing.TB, y []byte) *Table {
	f, err := rules.Parse("bench.yaml", y, rules.Options{MaxRules: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	t, err := Compile(f)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// probes draws lookup keys: half aimed at the rules' own prefixes and
// ports (hits and near misses), half random.
func probes(f *rules.File, n int) []Key {
	r := rand.New(rand.NewPCG(1, 2))
	var all []rules.Rule
	for _, g := range f.Groups {
		all = append(all, g.Ingress...)
	}
	keys := make([]Key, n)
	for i := range keys {
		k := Key{Dir: direction.Ingress, Proto: []ipproto.Proto{6, 6, 17, 1}[r.IntN(4)], Port: uint16(r.IntN(65536))}
		if len(all) > 0 && r.IntN(2) == 0 {
			rule := all[r.IntN(len(all))]
			k.Peer = edgeAddr(r, rule.Prefixes[r.IntN(len(rule.Prefixes))])
			if !rule.Proto.All {
				k.Proto = rule.Proto.Num
			}
			if len(rule.Ports) > 0 {
				k.Port = rule.Ports[0].Lo
			}
		} else {
			k.Peer = synthPrefix(r).Addr()
		}
		keys[i] = k
	}
	return keys
}

// BenchmarkMatch is the lookup cost on each table, with probes over both
// address families ("all") and, for tables that hold both, per family.
// Compare the 10k and 100k lines with the 1k ones for scaling, and with
// BenchmarkReference for the speed-up.
func BenchmarkMatch(b *testing.B) {
	for _, bt := range benchTables(b) {
		tab := mustTable(b, bt.yaml)
		keys := probes(tab.File(), 1<<14)
		sets := [][2]any{{"all", keys}}
		var v4, v6 []Key
		for _, k := range keys {
			if k.Peer.Is4() {
				v4 = append(v4, k)
			} else {
				v6 = append(v6, k)
			}
		}
		if hasV6(tab.File()) {
			sets = append(sets, [2]any{"v4", v4[:4096]}, [2]any{"v6", v6[:4096]})
		}
		for _, set := range sets {
			keys := set[1].([]Key)
			b.Run(bt.name+"/"+set[0].(string), func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					tab.Match(keys[i&(len(keys)-1)])
				}
				b.ReportMetric(float64(tab.Stats().Rules), "rules")
			})
		}
	}
}

func hasV6(f *rules.File) bool {
	for _, g := range f.Groups {
		for _, r := range g.Ingress {
			for _, p := range r.Prefixes {
				if p.Addr().Is6() && p.Bits() > 0 {
					return true
				}
			}
		}
	}
	return false
}

// BenchmarkReference is the naive slice scan on the same tables and
// probes, so the speed-up is measured in the same run.
func BenchmarkReference(b *testing.B) {
	for _, bt := range benchTables(b) {
		if !strings.Contains(bt.name, "1000") && !strings.Contains(bt.name, "10k") && !strings.HasSuffix(bt.name, "-10000") {
			continue
		}
		tab := mustTable(b, bt.yaml)
		f := tab.File()
		keys := probes(f, 1<<14)
		b.Run(bt.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				refMatch(f, keys[i&(len(keys)-1)])
			}
		})
	}
}

// BenchmarkCompile is reading, validating and compiling a rules file, and
// reports the compiled table's heap size.
func BenchmarkCompile(b *testing.B) {
	for _, bt := range benchTables(b) {
		if strings.HasSuffix(bt.name, "-10") {
			continue
		}
		b.Run(bt.name, func(b *testing.B) {
			var tab *Table
			for b.Loop() {
				tab = mustTable(b, bt.yaml)
			}
			b.StopTimer()
			b.ReportMetric(float64(tableBytes(b, bt.yaml))/(1<<20), "table-MiB")
			b.ReportMetric(float64(tab.Stats().Rules), "rules")
		})
	}
}

// tableBytes measures the heap a compiled table keeps (with its rules file).
func tableBytes(b testing.TB, y []byte) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab := mustTable(b, y)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tab)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// TestClassBenchAgrees runs the reference check on the real ClassBench
// tables when they are present.
func TestClassBenchAgrees(t *testing.T) {
	if _, err := os.Stat(*classbenchDir); err != nil {
		t.Skipf("ClassBench sets not found at %s (they live in ../shared/data outside a user's checkout)", *classbenchDir)
	}
	for _, name := range []string{"acl1_1k", "fw1_10k"} {
		y, n, err := classbenchYAML(filepath.Join(*classbenchDir, name))
		if err != nil {
			t.Fatal(err)
		}
		tab := mustTable(t, y)
		if tab.File().NumRules() != n || n < 500 {
			t.Fatalf("%s: %d rules compiled, %d converted", name, tab.File().NumRules(), n)
		}
		keys := probes(tab.File(), 3000)
		accepted := 0
		for _, k := range keys {
			want := refMatch(tab.File(), k)
			if got := tab.Match(k); got != want {
				t.Fatalf("%s: Match(%+v) = %+v, reference %+v", name, k, got, want)
			}
			if want.Accepted() {
				accepted++
			}
		}
		if accepted == 0 || accepted == len(keys) {
			t.Fatalf("%s: %d of %d probes accepted: the probes test nothing", name, accepted, len(keys))
		}
	}
}
