package main

import (
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/conntrack"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

func TestACLFlowMatcher(t *testing.T) {
	attacker := netip.MustParsePrefix("198.18.0.0/24")
	ssh := rules.ACLEntry{Number: 100, Action: rules.Deny, Proto: rules.Proto{Num: ipproto.TCP},
		Ports: []rules.PortRange{{Lo: 22, Hi: 22}}, Peers: []string{"198.18.0.0/24"}, Prefixes: []netip.Prefix{attacker}}
	all := rules.ACLEntry{Number: 7, Action: rules.Deny, Proto: rules.Proto{All: true}, Peers: []string{"198.18.0.0/24"}, Prefixes: []netip.Prefix{attacker}}
	flow := func(proto uint8, src, dst string, dport uint16) conntrack.Flow {
		return conntrack.Flow{Proto: proto, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: 40000, DstPort: dport}
	}
	for _, tc := range []struct {
		name string
		dir  direction.Dir
		e    rules.ACLEntry
		f    conntrack.Flow
		want bool
	}{
		{"ssh from the attacker", direction.Ingress, ssh, flow(6, "198.18.0.9", "198.19.0.1", 22), true},
		{"other port", direction.Ingress, ssh, flow(6, "198.18.0.9", "198.19.0.1", 80), false},
		{"udp", direction.Ingress, ssh, flow(17, "198.18.0.9", "198.19.0.1", 22), false},
		{"other peer", direction.Ingress, ssh, flow(6, "198.18.1.9", "198.19.0.1", 22), false},
		{"host opened it to the attacker", direction.Ingress, ssh, flow(6, "198.19.0.1", "198.18.0.9", 22), false},
		{"all protocols", direction.Ingress, all, flow(17, "198.18.0.9", "198.19.0.1", 53), true},
		{"egress entry, host opened it", direction.Egress, all, flow(6, "198.19.0.1", "198.18.0.9", 443), true},
		{"egress entry, peer opened it", direction.Egress, all, flow(6, "198.18.0.9", "198.19.0.1", 443), false},
		{"loopback", direction.Ingress, rules.ACLEntry{Number: 1, Proto: rules.Proto{All: true}, Peers: []string{"any"},
			Prefixes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, flow(6, "127.0.0.1", "127.0.0.1", 22), false},
	} {
		m, err := aclFlowMatcher(tc.dir, tc.e)
		if err != nil {
			t.Fatal(err)
		}
		if got := m(tc.f); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
