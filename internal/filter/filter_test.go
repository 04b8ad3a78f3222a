package filter

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// refMatch is the reference: a plain scan of the ACL entries of the
// key's direction, lowest number first, returning the first that matches
// and has not expired by now; then of every rule of every group, in file
// order, returning the first that allows the key.
func refMatch(f *rules.File, k Key) Result { return refMatchAt(f, k, time.Now()) }

func refMatchAt(f *rules.File, k Key, now time.Time) Result {
	drop := Result{Dir: k.Dir, Group: -1, Rule: NoRule}
	var best *rules.ACLEntry
	for _, e := range f.ACL.List(k.Dir) {
		r := e.Rule()
		if e.Expired(now) || !refRule(&r, k) {
			continue
		}
		if best == nil || e.Number < best.Number {
			best = &e
		}
	}
	if best != nil {
		res := Result{Dir: k.Dir, Group: -1, Rule: NoRule, ACL: int32(best.Number)}
		if best.Action == rules.Allow {
			res.Verdict = verdict.Accept
		}
		return res
	}
	for gi := range f.Groups {
		g := &f.Groups[gi]
		if !g.AttachedTo(testLinkName(k.Ifindex)) {
			continue
		}
		if k.Dir == direction.Egress && g.EgressOmitted {
			if k.Peer.IsValid() {
				return Result{Verdict: verdict.Accept, Dir: k.Dir, Group: int32(gi), Rule: NoRule}
			}
			continue
		}
		list := g.Ingress
		if k.Dir == direction.Egress {
			list = g.Egress
		}
		for ri := range list {
			if refRule(&list[ri], k) {
				return Result{Verdict: verdict.Accept, Dir: k.Dir, Group: int32(gi), Rule: int32(ri)}
			}
		}
	}
	return drop
}

func refRule(r *rules.Rule, k Key) bool {
	if !r.Proto.All && r.Proto.Num != k.Proto {
		return false
	}
	if r.Proto.HasPorts() && len(r.Ports) > 0 {
		in := false
		for _, p := range r.Ports {
			if p.Lo <= k.Port && k.Port <= p.Hi {
				in = true
			}
		}
		if !in {
			return false
		}
	}
	if r.Proto.IsICMP() && r.ICMP != nil {
		if r.ICMP.Type != k.Type || !r.ICMP.AnyCode && r.ICMP.Code != k.Code {
			return false
		}
	}
	for _, p := range r.Prefixes {
		if p.Contains(k.Peer) {
			return true
		}
	}
	return false
}

// Tiny constructors, so tests read like the policy.

func parse(t testing.TB, yaml string) *rules.File {
	t.Helper()
	f, err := rules.Parse("test.yaml", []byte(yaml), rules.Options{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return f
}

func compile(t testing.TB, f *rules.File) *Table {
	t.Helper()
	tab, err := Compile(f)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return tab
}

func in(proto ipproto.Proto, peer string, port uint16) Key {
	return Key{Dir: direction.Ingress, Proto: proto, Peer: netip.MustParseAddr(peer), Port: port}
}

func out(proto ipproto.Proto, peer string, port uint16) Key {
	return Key{Dir: direction.Egress, Proto: proto, Peer: netip.MustParseAddr(peer), Port: port}
}

func icmpIn(proto ipproto.Proto, peer string, typ, code uint8) Key {
	return Key{Dir: direction.Ingress, Proto: proto, Peer: netip.MustParseAddr(peer), Type: typ, Code: code}
}

func accept(g, r int32) Result { return Result{Verdict: verdict.Accept, Group: g, Rule: r} }

var drop = Result{Group: -1, Rule: NoRule}

const policy = `
version: 1
prefix_lists:
  office: [203.0.113.0/24, 2001:db8:100::/48]
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: tcp, ports: 22, from: [office]}
      - {proto: icmp, icmp: {type: 3, code: 4}, from: [any]}
      - {proto: icmpv6, icmp: {type: 2}, from: [any]}
      - {proto: udp, ports: "6000-6007", from: [198.18.0.0/16]}
      - {proto: 47, from: [198.18.5.5]}
    egress: []
  - name: admin
    ingress:
      - {proto: tcp, ports: 22, from: [198.18.1.0/24]}
      - {proto: all, from: [198.18.9.9/32]}
    egress:
      - {proto: udp, ports: 53, to: [198.18.0.53]}
  - name: locked
    egress: []
`

func TestMatchPolicy(t *testing.T) {
	tab := compile(t, parse(t, policy))
	tests := []struct {
		name string
		key  Key
		want Result
	}{
		{"http v4", in(6, "198.51.100.7", 80), accept(0, 0)},
		{"https v6", in(6, "2001:db8::7", 443), accept(0, 0)},
		{"8080 closed", in(6, "198.51.100.7", 8080), drop},
		{"udp 80 closed", in(17, "198.51.100.7", 80), drop},
		{"ssh from office v4", in(6, "203.0.113.9", 22), accept(0, 1)},
		{"ssh from office v6", in(6, "2001:db8:100:ffff::1", 22), accept(0, 1)},
		{"ssh from admin net", in(6, "198.18.1.200", 22), accept(1, 0)},
		{"ssh from elsewhere", in(6, "198.51.100.7", 22), drop},
		{"ssh just outside office", in(6, "203.0.114.0", 22), drop},
		{"pmtu v4", icmpIn(1, "198.51.100.7", 3, 4), accept(0, 2)},
		{"port unreachable not allowed", icmpIn(1, "198.51.100.7", 3, 3), drop},
		{"ping not allowed", icmpIn(1, "198.51.100.7", 8, 0), drop},
		{"pmtu v6 any code", icmpIn(58, "2001:db8::1", 2, 9), accept(0, 3)},
		{"icmpv6 echo not allowed", icmpIn(58, "2001:db8::1", 128, 0), drop},
		{"udp range low edge", in(17, "198.18.200.1", 6000), accept(0, 4)},
		{"udp range high edge", in(17, "198.18.200.1", 6007), accept(0, 4)},
		{"udp range past edge", in(17, "198.18.200.1", 6008), drop},
		{"udp range before edge", in(17, "198.18.200.1", 5999), drop},
		{"udp range wrong source", in(17, "198.19.0.1", 6000), drop},
		{"gre by address", in(47, "198.18.5.5", 0), accept(0, 5)},
		{"gre other address", in(47, "198.18.5.6", 0), drop},
		{"all protos host, tcp", in(6, "198.18.9.9", 31337), accept(1, 1)},
		{"all protos host, sctp", in(132, "198.18.9.9", 0), accept(1, 1)},
		{"all protos host, icmp", icmpIn(1, "198.18.9.9", 13, 0), accept(1, 1)},
		{"http wins over all-protos by group order", in(6, "198.18.9.9", 80), accept(0, 0)},
		{"invalid peer", Key{Dir: direction.Ingress, Proto: 6, Port: 80}, drop},
		{"egress dns allowed", out(17, "198.18.0.53", 53), Result{Verdict: verdict.Accept, Dir: direction.Egress, Group: 1, Rule: 0}},
		{"egress elsewhere", out(6, "198.51.100.1", 443), Result{Dir: direction.Egress, Group: -1, Rule: NoRule}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			want.Dir = tt.key.Dir
			if got := tab.Match(tt.key); got != want {
				t.Errorf("Match(%+v) = %+v, want %+v", tt.key, got, want)
			}
			if ref := refMatch(tab.File(), tt.key); ref != want {
				t.Errorf("reference disagrees with the table's expectation: %+v, want %+v", ref, want)
			}
		})
	}
}

// TestEgressDefault pins the brief's rule: egress omitted allows all
// outbound, egress: [] allows none, and the union of groups decides.
func TestEgressDefault(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Result
	}{
		{"omitted", "version: 1\ngroups:\n  - name: a\n", Result{Verdict: verdict.Accept, Dir: direction.Egress, Group: 0, Rule: NoRule}},
		{"empty list", "version: 1\ngroups:\n  - name: a\n    egress: []\n", Result{Dir: direction.Egress, Group: -1, Rule: NoRule}},
		{"one group omits, union allows", "version: 1\ngroups:\n  - name: a\n    egress: []\n  - name: b\n", Result{Verdict: verdict.Accept, Dir: direction.Egress, Group: 1, Rule: NoRule}},
		{"explicit rule elsewhere", "version: 1\ngroups:\n  - name: a\n    egress: [{proto: tcp, ports: 443, to: [any]}]\n", Result{Dir: direction.Egress, Group: -1, Rule: NoRule}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := compile(t, parse(t, tt.yaml))
			k := out(6, "198.51.100.1", 25)
			if got := tab.Match(k); got != tt.want {
				t.Errorf("Match = %+v, want %+v", got, tt.want)
			}
			// A new group denies all ingress.
			if got := tab.Match(in(6, "198.51.100.1", 22)); got.Accepted() {
				t.Errorf("ingress accepted with no ingress rules: %+v", got)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	tab := compile(t, parse(t, policy))
	tests := []struct {
		key  Key
		want string
	}{
		{in(6, "198.51.100.7", 443), "accepted by group web, ingress rule sgr-cd50c0891d1f (tcp 80,443 from any)"},
		{in(6, "203.0.113.1", 22), "accepted by group web, ingress rule sgr-2d9778e92f74 (tcp 22 from office)"},
		{in(6, "198.51.100.7", 8080), "dropped: no ingress rule allows it"},
		{out(17, "198.18.0.53", 53), "accepted by group admin, egress rule sgr-ffc5d5cffe60 (udp 53 to 198.18.0.53)"},
	}
	for _, tt := range tests {
		if got := tab.Describe(tab.Match(tt.key)); got != tt.want {
			t.Errorf("Describe(%+v) = %q, want %q", tt.key, got, tt.want)
		}
	}
	// A rule without an ID (a File not made by Parse) is named by its index.
	f := parse(t, policy)
	f.Groups[0].Ingress[1].ID = ""
	tab = compile(t, f)
	if got, want := tab.Describe(tab.Match(in(6, "203.0.113.1", 22))), "accepted by group web, ingress rule 1 (tcp 22 from office)"; got != want {
		t.Errorf("Describe of a rule without ID = %q, want %q", got, want)
	}
	tab = compile(t, parse(t, "version: 1\ngroups:\n  - name: a\n"))
	if got := tab.Describe(tab.Match(out(6, "198.51.100.1", 25))); !strings.Contains(got, "default egress rule") {
		t.Errorf("Describe of the implicit egress rule = %q", got)
	}
}

func TestZeroTableDrops(t *testing.T) {
	var tab Table
	if v := tab.Match(in(6, "198.51.100.1", 80)); v.Accepted() {
		t.Fatalf("zero Table accepted: %+v", v)
	}
}

func TestMatchAllocs(t *testing.T) {
	tab := compile(t, parse(t, policy))
	keys := []Key{in(6, "198.51.100.7", 443), in(6, "2001:db8::7", 8080), icmpIn(1, "198.18.9.9", 3, 4), out(17, "198.18.0.53", 53)}
	for _, k := range keys {
		if n := testing.AllocsPerRun(1000, func() { tab.Match(k) }); n != 0 {
			t.Errorf("Match(%+v) allocates %v times", k, n)
		}
	}
}

// TestMatchAgreesWithReference compares the compiled table with the slice
// scan on seeded random rule sets and probes, with the boundaries that
// break tables: port edges, /0, /32, /128, nested and overlapping prefixes,
// ICMP any-code, protocol "all", numbered protocols, and egress defaults.
func TestMatchAgreesWithReference(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 15
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 42))
			f := randomFile(r, 1+r.IntN(120))
			tab := compile(t, f)
			for range 4000 {
				k := randomKey(r, f)
				want := refMatch(f, k)
				if got := tab.Match(k); got != want {
					t.Fatalf("Match(%+v) = %+v, reference says %+v\nrules:\n%s", k, got, want, dump(f))
				}
			}
		})
	}
}

func dump(f *rules.File) string {
	var b strings.Builder
	for gi, g := range f.Groups {
		fmt.Fprintf(&b, "group %d %s egressOmitted=%v\n", gi, g.Name, g.EgressOmitted)
		for ri := range g.Ingress {
			fmt.Fprintf(&b, "  in %d: %s %v\n", ri, g.Ingress[ri].String(), g.Ingress[ri].Prefixes)
		}
		for ri := range g.Egress {
			fmt.Fprintf(&b, "  out %d: %s %v\n", ri, g.Egress[ri].Format(direction.Egress), g.Egress[ri].Prefixes)
		}
	}
	return b.String()
}

// A small universe of prefixes with nesting and overlap, so probes hit
// boundaries often.
var universe = []string{
	"0.0.0.0/0", "::/0", "198.18.0.0/15", "198.18.0.0/16", "198.19.0.0/16",
	"198.18.1.0/24", "198.18.1.128/25", "198.18.1.7/32", "198.18.1.255/32",
	"203.0.113.0/24", "203.0.113.64/26", "128.0.0.0/1", "0.0.0.0/1",
	"2001:db8::/32", "2001:db8::/48", "2001:db8:0:1::/64", "2001:db8::1/128",
	"2001:db8:ffff::/48", "8000::/1",
}

func randomFile(r *rand.Rand, n int) *rules.File {
	f := &rules.File{Version: 1}
	ngroups := 1 + r.IntN(4)
	for g := range ngroups {
		grp := rules.Group{Name: fmt.Sprint("g", g), EgressOmitted: r.IntN(3) == 0}
		for range n / ngroups {
			rule := randomRule(r)
			if r.IntN(3) == 0 && !grp.EgressOmitted {
				grp.Egress = append(grp.Egress, rule)
			} else {
				grp.Ingress = append(grp.Ingress, rule)
			}
		}
		f.Groups = append(f.Groups, grp)
	}
	return f
}

var protos = []rules.Proto{
	{Num: 6}, {Num: 6}, {Num: 6}, {Num: 17}, {Num: 17}, {Num: 1}, {Num: 58}, {All: true}, {Num: 47}, {Num: 132},
}

func randomRule(r *rand.Rand) rules.Rule {
	rule := rules.Rule{Proto: protos[r.IntN(len(protos))]}
	switch {
	case rule.Proto.HasPorts() && r.IntN(6) != 0:
		for range 1 + r.IntN(3) {
			lo := randomPort(r)
			hi := lo
			if r.IntN(3) == 0 {
				hi = lo + uint16(r.IntN(int(65535-lo)+1))
			}
			rule.Ports = append(rule.Ports, rules.PortRange{Lo: lo, Hi: hi})
		}
	case rule.Proto.IsICMP() && r.IntN(5) != 0:
		rule.ICMP = &rules.ICMP{Type: uint8(r.IntN(6)), Code: uint8(r.IntN(4)), AnyCode: r.IntN(2) == 0}
	}
	for range 1 + r.IntN(3) {
		p := randomPrefix(r)
		rule.Prefixes = append(rule.Prefixes, p)
		rule.Peers = append(rule.Peers, p.String())
	}
	return rule
}

func randomPort(r *rand.Rand) uint16 {
	edges := []uint16{0, 1, 22, 80, 443, 1023, 1024, 8080, 65534, 65535}
	if r.IntN(2) == 0 {
		return edges[r.IntN(len(edges))]
	}
	return uint16(r.IntN(65536))
}

func randomPrefix(r *rand.Rand) netip.Prefix {
	if r.IntN(3) == 0 {
		// A random prefix of random length.
		var a netip.Addr
		if r.IntN(2) == 0 {
			a = netip.AddrFrom4([4]byte{198, 18, byte(r.IntN(4)), byte(r.IntN(256))})
		} else {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.IntN(256))})
		}
		return netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).Masked()
	}
	return netip.MustParsePrefix(universe[r.IntN(len(universe))])
}

func randomKey(r *rand.Rand, f *rules.File) Key {
	k := Key{Dir: direction.Dir(r.IntN(2)), Proto: protos[r.IntN(len(protos))].Num}
	if r.IntN(10) == 0 {
		k.Proto = ipproto.Proto(r.IntN(256))
	}
	// Probe at and around prefix edges of the rules and the universe.
	var p netip.Prefix
	if r.IntN(2) == 0 {
		g := &f.Groups[r.IntN(len(f.Groups))]
		if n := len(g.Ingress) + len(g.Egress); n > 0 {
			i := r.IntN(n)
			var rule *rules.Rule
			if i < len(g.Ingress) {
				rule = &g.Ingress[i]
			} else {
				rule = &g.Egress[i-len(g.Ingress)]
			}
			p = rule.Prefixes[r.IntN(len(rule.Prefixes))]
			if rule.Proto.HasPorts() && len(rule.Ports) > 0 {
				pr := rule.Ports[r.IntN(len(rule.Ports))]
				k.Port = []uint16{pr.Lo, pr.Hi, pr.Lo - 1, pr.Hi + 1}[r.IntN(4)]
			}
		}
	}
	if !p.IsValid() {
		p = randomPrefix(r)
	}
	k.Peer = edgeAddr(r, p)
	if k.Port == 0 {
		k.Port = randomPort(r)
	}
	k.Type, k.Code = uint8(r.IntN(6)), uint8(r.IntN(4))
	return k
}

// edgeAddr picks the first, last, one-before or one-after address of p.
func edgeAddr(r *rand.Rand, p netip.Prefix) netip.Addr {
	first := p.Masked().Addr()
	last := first
	b := last.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	last, _ = netip.AddrFromSlice(b)
	switch r.IntN(5) {
	case 0:
		return first
	case 1:
		return last
	case 2:
		if prev := first.Prev(); prev.IsValid() {
			return prev
		}
		return first
	case 3:
		if next := last.Next(); next.IsValid() {
			return next
		}
		return last
	}
	// Somewhere inside.
	b = first.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		if r.IntN(2) == 0 {
			b[i/8] |= 1 << (7 - i%8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestLargeTablesAgree exercises what small random tables never reach:
// the IPv4 /16 split into many ranges and the IPv6 bucket index, on
// thousands of nested prefixes under one common prefix and beside it.
func TestLargeTablesAgree(t *testing.T) {
	seeds, probes := 3, 20000
	if testing.Short() {
		seeds, probes = 1, 5000
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 99))
			f := &rules.File{Version: 1, Groups: []rules.Group{{Name: "big"}}}
			for range 3000 {
				rule := randomRule(r)
				rule.Prefixes, rule.Peers = nil, nil
				for range 1 + r.IntN(2) {
					var p netip.Prefix
					switch r.IntN(8) {
					case 0, 6, 7: // IPv6 under one /32, long and nested
						a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(4)), byte(r.IntN(256)), 8: byte(r.IntN(256)), 15: byte(r.IntN(256))})
						p = netip.PrefixFrom(a, 48+r.IntN(81)).Masked()
					case 1: // IPv6 elsewhere, sometimes short
						a := netip.AddrFrom16([16]byte{byte(r.IntN(256)), byte(r.IntN(256)), 15: byte(r.IntN(256))})
						p = netip.PrefixFrom(a, 64+r.IntN(65)).Masked()
					case 2, 3: // IPv4 inside a few /16s, long
						a := netip.AddrFrom4([4]byte{198, 18 + byte(r.IntN(2)), byte(r.IntN(256)), byte(r.IntN(256))})
						p = netip.PrefixFrom(a, 16+r.IntN(17)).Masked()
					default:
						// Nested and overlapping IPv4, but no short IPv6: an
						// early ::/0 rule would decide every IPv6 probe.
						for p = randomPrefix(r); p.Addr().Is6() && p.Bits() < 32; p = randomPrefix(r) {
						}
					}
					rule.Prefixes = append(rule.Prefixes, p)
					rule.Peers = append(rule.Peers, p.String())
				}
				f.Groups[0].Ingress = append(f.Groups[0].Ingress, rule)
			}
			tab := compile(t, f)
			if pt := tab.dirs[direction.Ingress].byProto[ipproto.TCP]; pt.v6.first == nil || pt.l1[198<<8|18]&rangeFlag == 0 {
				t.Fatalf("the table did not build the IPv6 bucket index (%d ranges) or the IPv4 /16 ranges (%x) this test is for", len(pt.v6.hi), pt.l1[198<<8|18])
			}
			accepted := 0
			for range probes {
				k := randomKey(r, f)
				k.Dir = direction.Ingress
				want := refMatch(f, k)
				if got := tab.Match(k); got != want {
					t.Fatalf("Match(%+v) = %+v, reference says %+v", k, got, want)
				}
				if want.Accepted() {
					accepted++
				}
			}
			if accepted < probes/20 {
				t.Fatalf("only %d probes accepted: the probes test little", accepted)
			}
		})
	}
}

func TestSlots(t *testing.T) {
	tab := compile(t, parse(t, policy))
	// web: 6 ingress, egress [] (no default); admin: 2 ingress, 1 egress;
	// locked: egress [] — 9 slots.
	if tab.NumSlots() != 9 {
		t.Fatalf("NumSlots = %d, want 9", tab.NumSlots())
	}
	seen := map[int]bool{}
	for _, v := range []Result{accept(0, 0), accept(0, 5), accept(1, 0), accept(1, 1), {Verdict: verdict.Accept, Dir: direction.Egress, Group: 1, Rule: 0}} {
		s := tab.Slot(v)
		if s < 0 || s >= tab.NumSlots() || seen[s] {
			t.Errorf("Slot(%+v) = %d: out of range or repeated", v, s)
		}
		seen[s] = true
	}
	if s := tab.Slot(drop); s != -1 {
		t.Errorf("Slot(drop) = %d", s)
	}
	tab = compile(t, parse(t, "version: 1\ngroups:\n  - name: a\n  - name: b\n    ingress: [{proto: tcp, from: [any]}]\n"))
	def := tab.Match(out(6, "198.51.100.1", 1))
	if s := tab.Slot(def); s != 0 || tab.NumSlots() != 3 {
		t.Errorf("implicit egress slot = %d of %d, want 0 of 3", s, tab.NumSlots())
	}
	if s := tab.Slot(tab.Match(in(6, "198.51.100.1", 1))); s != 1 {
		t.Errorf("group b ingress slot = %d, want 1", s)
	}
	if n := testing.AllocsPerRun(100, func() { tab.Slot(def) }); n != 0 {
		t.Errorf("Slot allocates %v", n)
	}
}
