package filter

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// synthACLYAML writes n ingress ACL entries shaped like a host's bans
// and exceptions: mostly deny of one address or a /24 (all protocols, or
// one tcp port), some allows of a port from a range.
func synthACLYAML(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	var b bytes.Buffer
	b.WriteString("acl:\n  ingress:\n")
	for i := range n {
		action := "deny"
		if r.IntN(5) == 0 {
			action = "allow"
		}
		fmt.Fprintf(&b, "    - {number: %d, action: %s", 1+i*(rules.MaxACLNumber-1)/max(n, 1), action)
		if r.IntN(2) == 0 {
			fmt.Fprintf(&b, ", proto: tcp, ports: %d", []int{22, 80, 443, 1 + r.IntN(65535)}[r.IntN(4)])
		} else {
			b.WriteString(", proto: all")
		}
		p := synthPrefix(r)
		if p.Addr().Is4() {
			p = netipPrefix(p.Addr(), []int{32, 32, 24}[r.IntN(3)])
		}
		fmt.Fprintf(&b, ", from: [%s]}\n", p)
	}
	return b.Bytes()
}

// BenchmarkMatchACL is BenchmarkMatch's lookup on the 10k-rule synthetic
// table with an ACL of 0, 100 and 1000 entries in front: the ACL column.
// A quarter of the probes aim at ACL entries, the rest are
// BenchmarkMatch's.
func BenchmarkMatchACL(b *testing.B) {
	groups := synthYAML(10000, 10000)
	for _, n := range []int{0, 100, 1000} {
		y := groups
		if n > 0 {
			// synthYAML starts "version: 1\n": put the acl after it.
			y = bytes.Join([][]byte{[]byte("version: 1\n"), synthACLYAML(n, uint64(n)), bytes.TrimPrefix(groups, []byte("version: 1\n"))}, nil)
		}
		tab := mustTable(b, y)
		keys := probes(tab.File(), 1<<14)
		r := rand.New(rand.NewPCG(3, 4))
		acl := tab.File().ACL.List(direction.Ingress)
		for i := range keys {
			if len(acl) == 0 || i%4 != 0 {
				continue
			}
			e := &acl[r.IntN(len(acl))]
			keys[i].Peer = edgeAddr(r, e.Prefixes[0])
			if len(e.Ports) > 0 {
				keys[i].Proto, keys[i].Port = e.Proto.Num, e.Ports[0].Lo
			}
		}
		b.Run(fmt.Sprintf("synth-10000/acl-%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				tab.Match(keys[i&(len(keys)-1)])
			}
			b.ReportMetric(float64(tab.Stats().ACL), "acl")
		})
	}
}

func netipPrefix(a netip.Addr, bits int) netip.Prefix { return netip.PrefixFrom(a, bits).Masked() }
