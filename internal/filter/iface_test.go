package filter

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// testLinks are the interfaces the interface tests bind a table to; the
// reference matcher names a Key's Ifindex with them.
var testLinks = []Link{{1, "lo"}, {2, "eth0"}, {3, "eth1"}, {4, "eth10"}, {5, "wg0"}, {6, "veth7"}, {70000, "eth"}}

// testLinkName is the name of ifindex among testLinks, "" when unknown
// (a name no pattern names: patterns are never empty).
func testLinkName(ifindex uint32) string {
	for _, l := range testLinks {
		if l.Index == ifindex {
			return l.Name
		}
	}
	return ""
}

func on(k Key, ifindex uint32) Key { k.Ifindex = ifindex; return k }

const ifacePolicy = `version: 1
groups:
  - name: web
    ingress: [{proto: tcp, ports: [80, 443], from: [any]}]
  - name: db
    interfaces: [eth1]
    ingress:
      - {proto: tcp, ports: 5432, from: [any]}
      - {proto: tcp, ports: 80, from: [198.18.0.0/15]}
    egress: []
  - name: mon
    interfaces: ["eth*"]
    ingress: [{proto: tcp, ports: 9100, from: [198.18.0.0/15]}]
    egress: [{proto: udp, ports: 53, to: [any]}]
  - name: tunnel
    interfaces: [wg0]
    ingress: [{proto: all, from: [198.18.5.0/24]}]
`

func TestMatchInterfaces(t *testing.T) {
	f := parse(t, ifacePolicy)
	tab := compile(t, f)
	tab.Bind(testLinks)
	const eth0, eth1, eth10, wg0, unknown = 2, 3, 4, 5, 99
	tests := []struct {
		k    Key
		want Result
	}{
		{on(in(6, "198.51.100.7", 80), eth0), accept(0, 0)},
		{on(in(6, "198.51.100.7", 80), unknown), accept(0, 0)},
		{on(in(6, "198.51.100.7", 80), 0), accept(0, 0)},
		{on(in(6, "198.51.100.7", 5432), eth1), accept(1, 0)},
		{on(in(6, "198.51.100.7", 5432), eth0), drop},
		{on(in(6, "198.51.100.7", 5432), eth10), drop}, // eth1 is no prefix
		{on(in(6, "198.51.100.7", 5432), unknown), drop},
		{on(in(6, "198.51.100.7", 5432), 0), drop},
		// The first rule that matches among the interface's groups:
		{on(in(6, "198.18.0.7", 80), eth1), accept(0, 0)},
		{on(in(6, "198.18.0.7", 9100), eth1), accept(2, 0)},
		{on(in(6, "198.18.0.7", 9100), eth10), accept(2, 0)},
		{on(in(6, "198.18.0.7", 9100), 70000), accept(2, 0)}, // "eth" itself matches eth*
		{on(in(6, "198.18.0.7", 9100), wg0), drop},
		{on(in(47, "198.18.5.9", 0), wg0), accept(3, 0)},
		{on(in(47, "198.18.5.9", 0), eth0), drop},
		// Egress: web's default holds everywhere and comes first.
		{on(out(17, "198.51.100.53", 53), eth1), Result{Verdict: accept(0, 0).Verdict, Group: 0, Rule: NoRule}},
	}
	for _, tt := range tests {
		tt.want.Dir = tt.k.Dir
		if got := tab.Match(tt.k); got != tt.want {
			t.Errorf("Match(%+v) on %q = %+v, want %+v", tt.k, testLinkName(tt.k.Ifindex), got, tt.want)
		}
		if ref := refMatch(f, tt.k); ref != tt.want {
			t.Errorf("reference(%+v) = %+v, want %+v", tt.k, ref, tt.want)
		}
	}
	// none named; eth1 (web, db, mon); eth* (web, mon); wg0 (web, tunnel)
	if tab.Views() != 4 {
		t.Errorf("views: %d, want 4", tab.Views())
	}
}

// TestInterfaceOnlyEgress: a host whose groups are all attached to
// interfaces has no rules on an interface none names, egress included.
func TestInterfaceOnlyEgress(t *testing.T) {
	tab := compile(t, parse(t, "version: 1\ngroups:\n  - {name: pub, interfaces: [eth0]}\n"))
	tab.Bind(testLinks)
	if got := tab.Match(on(out(6, "198.51.100.7", 443), 2)); !got.Accepted() {
		t.Errorf("egress on eth0 = %+v, want the default egress of pub", got)
	}
	if got := tab.Match(on(out(6, "198.51.100.7", 443), 3)); got.Accepted() {
		t.Errorf("egress on eth1 = %+v, want drop: no group is on eth1", got)
	}
}

// TestBindLater: an interface that appears after the compile is covered
// once Bind is told of it, with no new table.
func TestBindLater(t *testing.T) {
	tab := compile(t, parse(t, ifacePolicy))
	k := on(in(6, "198.51.100.7", 5432), 42)
	if tab.Match(k).Accepted() {
		t.Fatal("accepted on an interface the table does not know")
	}
	tab.Bind(append(testLinks[:len(testLinks):len(testLinks)], Link{42, "eth1"}))
	if !tab.Match(k).Accepted() {
		t.Fatal("not accepted once ifindex 42 is bound to eth1")
	}
	tab.Bind(testLinks) // gone again
	if tab.Match(k).Accepted() {
		t.Fatal("accepted after ifindex 42 went away")
	}
}

func TestNoInterfacesNoViews(t *testing.T) {
	tab := compile(t, parse(t, policy))
	if tab.HasInterfaces() || tab.Views() != 0 || tab.iface != nil {
		t.Errorf("a file without interfaces has views: %d", tab.Views())
	}
	tab.Bind(testLinks) // a no-op
	if got := tab.Match(on(in(6, "198.51.100.7", 443), 3)); got != tab.Match(in(6, "198.51.100.7", 443)) {
		t.Errorf("Ifindex changed a verdict of a table without interfaces: %+v", got)
	}
}

func TestMatchInterfacesAllocs(t *testing.T) {
	tab := compile(t, parse(t, ifacePolicy))
	tab.Bind(testLinks)
	keys := []Key{on(in(6, "198.51.100.7", 5432), 3), on(in(6, "2001:db8::7", 80), 4), on(out(17, "198.18.0.53", 53), 99), on(in(6, "198.18.0.7", 9100), 0)}
	for _, k := range keys {
		if n := testing.AllocsPerRun(1000, func() { tab.Match(k) }); n != 0 {
			t.Errorf("Match(%+v) allocates %v times", k, n)
		}
	}
}

// TestBindRace rebinds while readers match (run with -race).
func TestBindRace(t *testing.T) {
	tab := compile(t, parse(t, ifacePolicy))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := range 20000 {
				tab.Match(on(in(6, "198.18.0.7", 9100), uint32(i%8)))
			}
		})
	}
	for i := range 200 {
		tab.Bind(testLinks[:i%len(testLinks)])
	}
	wg.Wait()
}

// TestInterfacesAgreeWithReference is TestMatchAgreesWithReference with
// groups attached to random interface patterns and keys on random
// interfaces, known and unknown.
func TestInterfacesAgreeWithReference(t *testing.T) {
	patterns := []string{"eth0", "eth1", "eth*", "eth1*", "eth+", "wg0", "wg*", "*", "lo", "veth7", "nope", "e*"}
	seeds := 60
	if testing.Short() {
		seeds = 15
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 17))
			f := randomFile(r, 1+r.IntN(80))
			for gi := range f.Groups {
				if r.IntN(3) == 0 {
					continue // every interface
				}
				for range 1 + r.IntN(2) {
					p := patterns[r.IntN(len(patterns))]
					if !contains(f.Groups[gi].Interfaces, p) {
						f.Groups[gi].Interfaces = append(f.Groups[gi].Interfaces, p)
					}
				}
			}
			tab := compile(t, f)
			tab.Bind(testLinks)
			for range 4000 {
				k := randomKey(r, f)
				k.Ifindex = uint32(r.IntN(9)) // 0, 7, 8: unknown
				if r.IntN(20) == 0 {
					k.Ifindex = 70000
				}
				want := refMatch(f, k)
				if got := tab.Match(k); got != want {
					t.Fatalf("Match(%+v) on %q = %+v, reference says %+v\nrules:\n%s\ninterfaces: %s", k, testLinkName(k.Ifindex), got, want, dump(f), ifaceDump(f))
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ifaceDump(f *rules.File) string {
	s := ""
	for _, g := range f.Groups {
		s += fmt.Sprintf("%s: %q\n", g.Name, g.Interfaces)
	}
	return s
}

// BenchmarkMatchInterfaces is the cost of interfaces: the same probes on
// a table without them, and with an interface-attached group bound to a
// host's few interfaces.
func BenchmarkMatchInterfaces(b *testing.B) {
	plain := mustTable(b, []byte(policy))
	withIf := mustTable(b, []byte(ifacePolicy))
	withIf.Bind(testLinks)
	keys := []Key{in(ipproto.TCP, "198.51.100.7", 443), in(ipproto.TCP, "198.18.0.7", 9100), out(ipproto.UDP, "198.18.0.53", 53)}
	for _, bt := range []struct {
		name string
		tab  *Table
	}{{"none", plain}, {"interfaces", withIf}} {
		b.Run(bt.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				k := keys[i%len(keys)]
				k.Ifindex = uint32(2 + i%4)
				bt.tab.Match(k)
			}
		})
	}
}
