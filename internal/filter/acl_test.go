package filter

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// aclPolicy is policy with an ACL in front of it.
var aclPolicy = strings.Replace(policy, "groups:", `acl:
  ingress:
    - {number: 200, action: allow, proto: tcp, ports: 9000, from: [office]}
    - {number: 100, action: deny, proto: tcp, ports: 80, from: [198.51.100.9]}
    - {number: 150, action: deny, proto: all, from: [198.51.100.0/24]}
    - {number: 50, action: allow, proto: all, from: [198.51.100.7]}
    - {number: 300, action: deny, proto: icmp, icmp: {type: 8}, from: [any]}
    - {number: 400, action: deny, proto: tcp, from: [198.18.77.0/24], expires: 2026-06-01T00:00:00Z}
    - {number: 401, action: deny, proto: udp, from: [198.18.77.0/24], expires: 2026-05-01T00:00:00Z}
  egress:
    - {number: 100, action: deny, proto: udp, ports: 53, to: [198.18.0.53]}
groups:`, 1)

var may2026 = time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)

func aclDeny(n int32) Result { return Result{Group: -1, Rule: NoRule, ACL: n} }
func aclAllow(n int32) Result {
	return Result{Verdict: verdict.Accept, Group: -1, Rule: NoRule, ACL: n}
}

func TestMatchACL(t *testing.T) {
	tab, err := CompileAt(parse(t, aclPolicy), may2026)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  Key
		want Result
	}{
		{"deny 100 before the group's allow of 80", in(6, "198.51.100.9", 80), aclDeny(100)},
		{"150 denies the rest of the /24, before the groups", in(6, "198.51.100.9", 443), aclDeny(150)},
		{"50 allows one address of the /24 first", in(6, "198.51.100.7", 8080), aclAllow(50)},
		{"200 allows a port no group opens", in(6, "203.0.113.5", 9000), aclAllow(200)},
		{"no entry: the groups decide (accept)", in(6, "198.18.3.3", 443), accept(0, 0)},
		{"no entry: the groups decide (drop)", in(6, "203.0.113.5", 9001), drop},
		{"icmp type 8 denied", icmpIn(1, "198.18.9.9", 8, 0), aclDeny(300)},
		{"icmp type 3/4 falls through", icmpIn(1, "198.18.9.9", 3, 4), accept(0, 2)},
		{"an unexpired entry still matches", in(6, "198.18.77.1", 443), aclDeny(400)},
		{"an expired entry does not", in(17, "198.18.77.1", 6000), accept(0, 4)},
		{"egress deny", out(17, "198.18.0.53", 53), aclDeny(100)},
		{"ingress numbers are not egress's", out(6, "198.51.100.9", 80), drop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			want.Dir = tt.key.Dir
			if got := tab.Match(tt.key); got != want {
				t.Errorf("Match = %+v, want %+v", got, want)
			}
			if ref := refMatchAt(tab.File(), tt.key, may2026); ref != want {
				t.Errorf("reference = %+v, want %+v", ref, want)
			}
		})
	}
	if got, want := tab.NextExpiry(), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("NextExpiry = %v, want %v", got, want)
	}
	if got := tab.Describe(tab.Match(in(6, "198.51.100.9", 80))); got != "dropped by acl ingress entry 100 (deny tcp 80 from 198.51.100.9)" {
		t.Errorf("Describe = %q", got)
	}
	if got := tab.Describe(tab.Match(in(6, "203.0.113.5", 9000))); got != "accepted by acl ingress entry 200 (allow tcp 9000 from office)" {
		t.Errorf("Describe = %q", got)
	}
}

// After every expiry, the table holds no expiring entry and says so.
func TestACLExpiry(t *testing.T) {
	f := parse(t, aclPolicy)
	late := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tab, err := CompileAt(f, late)
	if err != nil {
		t.Fatal(err)
	}
	if !tab.NextExpiry().IsZero() {
		t.Errorf("NextExpiry = %v, want none", tab.NextExpiry())
	}
	if got := tab.Match(in(6, "198.18.77.1", 443)); got.ACL != 0 {
		t.Errorf("expired entry matched: %+v", got)
	}
	if tab.Slot(aclDeny(400)) < 0 {
		t.Errorf("an expired entry lost its slot")
	}
}

func TestACLSlots(t *testing.T) {
	tab, err := CompileAt(parse(t, aclPolicy), may2026)
	if err != nil {
		t.Fatal(err)
	}
	// policy's 9 slots, then 7 ingress and 1 egress entries.
	if tab.NumSlots() != 17 {
		t.Fatalf("NumSlots = %d, want 17", tab.NumSlots())
	}
	seen := map[int]bool{}
	for _, n := range []int32{50, 100, 150, 200, 300, 400, 401} {
		s := tab.Slot(Result{Dir: direction.Ingress, ACL: n})
		if s < 9 || s >= 17 || seen[s] {
			t.Errorf("slot of ingress %d = %d", n, s)
		}
		seen[s] = true
		if e := tab.ACLEntry(Result{Dir: direction.Ingress, ACL: n}); e == nil || int32(e.Number) != n {
			t.Errorf("ACLEntry(%d) = %+v", n, e)
		}
	}
	if s := tab.Slot(Result{Dir: direction.Egress, ACL: 100}); s != 16 {
		t.Errorf("slot of egress 100 = %d, want 16", s)
	}
	if s := tab.Slot(Result{Dir: direction.Egress, ACL: 50}); s != -1 {
		t.Errorf("slot of a missing entry = %d", s)
	}
	v := tab.Match(in(6, "198.51.100.9", 80))
	if n := testing.AllocsPerRun(100, func() { tab.Slot(v) }); n != 0 {
		t.Errorf("Slot allocates %v", n)
	}
}

func TestMatchACLAllocs(t *testing.T) {
	tab, err := CompileAt(parse(t, aclPolicy), may2026)
	if err != nil {
		t.Fatal(err)
	}
	keys := []Key{in(6, "198.51.100.9", 80), in(6, "203.0.113.5", 9000), in(6, "2001:db8::7", 8080), icmpIn(1, "198.18.9.9", 3, 4), out(17, "198.18.0.53", 53)}
	for _, k := range keys {
		if n := testing.AllocsPerRun(1000, func() { tab.Match(k) }); n != 0 {
			t.Errorf("Match(%+v) allocates %v times", k, n)
		}
	}
}

// A file without an ACL compiles to a table without the ACL index, so
// Match pays one nil check for it.
func TestNoACLNoIndex(t *testing.T) {
	if tab := compile(t, parse(t, policy)); tab.HasACL() {
		t.Errorf("a file without acl built an ACL index")
	}
}

// TestACLAgreesWithReference compares the compiled table with the
// reference on seeded random ACLs in front of random groups: nested and
// overlapping prefixes, allow and deny, numbers in any file order,
// entries expired and not.
func TestACLAgreesWithReference(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 15
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 7))
			f := randomFile(r, 1+r.IntN(60))
			f.ACL = randomACL(r, r.IntN(80))
			tab, err := CompileAt(f, may2026)
			if err != nil {
				t.Fatal(err)
			}
			decided := 0
			for range 4000 {
				k := randomACLKey(r, f)
				want := refMatchAt(f, k, may2026)
				if got := tab.Match(k); got != want {
					t.Fatalf("Match(%+v) = %+v, reference says %+v\nacl:\n%s\nrules:\n%s", k, got, want, dumpACL(f), dump(f))
				}
				if want.ACL != 0 {
					decided++
				}
			}
			if f.ACL.Len() > 10 && decided == 0 {
				t.Fatalf("no probe was decided by the ACL: the probes test little")
			}
		})
	}
}

func randomACL(r *rand.Rand, n int) rules.ACL {
	var a rules.ACL
	used := [2]map[int]bool{{}, {}}
	for range n {
		d := direction.Dir(r.IntN(2))
		num := 1 + r.IntN(200)
		if r.IntN(10) == 0 {
			num = []int{rules.MinACLNumber, rules.MaxACLNumber}[r.IntN(2)]
		}
		if used[d][num] {
			continue
		}
		used[d][num] = true
		rule := randomRule(r)
		e := rules.ACLEntry{Number: num, Action: rules.Action(r.IntN(2)), Proto: rule.Proto, Ports: rule.Ports, ICMP: rule.ICMP, Peers: rule.Peers, Prefixes: rule.Prefixes}
		switch r.IntN(6) {
		case 0:
			e.Expires = may2026.Add(-time.Hour)
		case 1:
			e.Expires = may2026 // expired: at or before now
		case 2:
			e.Expires = may2026.Add(time.Duration(1+r.IntN(100)) * time.Minute)
		}
		if d == direction.Egress {
			a.Egress = append(a.Egress, e)
		} else {
			a.Ingress = append(a.Ingress, e)
		}
	}
	return a
}

// randomACLKey probes near the ACL's prefixes and ports half the time,
// near the groups' otherwise.
func randomACLKey(r *rand.Rand, f *rules.File) Key {
	k := randomKey(r, f)
	list := f.ACL.List(k.Dir)
	if len(list) == 0 || r.IntN(2) == 0 {
		return k
	}
	e := &list[r.IntN(len(list))]
	k.Peer = edgeAddr(r, e.Prefixes[r.IntN(len(e.Prefixes))])
	if !e.Proto.All {
		k.Proto = e.Proto.Num
	}
	if len(e.Ports) > 0 {
		pr := e.Ports[r.IntN(len(e.Ports))]
		k.Port = []uint16{pr.Lo, pr.Hi, pr.Lo - 1, pr.Hi + 1}[r.IntN(4)]
	}
	if e.ICMP != nil && r.IntN(2) == 0 {
		k.Type, k.Code = e.ICMP.Type, e.ICMP.Code
	}
	return k
}

func dumpACL(f *rules.File) string {
	var b strings.Builder
	for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
		for _, e := range f.ACL.List(d) {
			fmt.Fprintf(&b, "  %s %s %v\n", d.Key(), e.Format(d), e.Prefixes)
		}
	}
	return b.String()
}
