package kernel

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// TestNDRulesText pins the installed neighbour discovery rules, now built
// from ndHopLimit: the same text as before the one definition existed.
func TestNDRulesText(t *testing.T) {
	want := []string{
		"-p ipv6-icmp -m icmp6 --icmpv6-type 133 -m hl --hl-eq 255 -j ACCEPT",
		"-p ipv6-icmp -m icmp6 --icmpv6-type 134 -m hl --hl-eq 255 -j ACCEPT",
		"-p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT",
		"-p ipv6-icmp -m icmp6 --icmpv6-type 136 -m hl --hl-eq 255 -j ACCEPT",
		"-p ipv6-icmp -m icmp6 --icmpv6-type 137 -m hl --hl-eq 255 -j ACCEPT",
		"-p ipv6-icmp -m icmp6 --icmpv6-type 130 -m hl --hl-eq 1 -j ACCEPT",
		"-p ipv6-icmp -m icmp6 --icmpv6-type 131 -m hl --hl-eq 1 -j ACCEPT",
		"-p ipv6-icmp -m icmp6 --icmpv6-type 132 -m hl --hl-eq 1 -j ACCEPT",
		"-p ipv6-icmp -m icmp6 --icmpv6-type 143 -m hl --hl-eq 1 -j ACCEPT",
	}
	if got := ndRules(); !slices.Equal(got, want) {
		t.Errorf("ndRules:\n%q\nwant\n%q", got, want)
	}
}

// TestAdmits: what the host passes before the queue, for a query.
func TestAdmits(t *testing.T) {
	tests := []struct {
		peer  string
		proto ipproto.Proto
		typ   uint8
		want  Admit
	}{
		{"127.0.0.1", ipproto.TCP, 0, AdmitLoopback},
		{"127.9.9.9", ipproto.UDP, 0, AdmitLoopback},
		{"::1", ipproto.ICMPv6, 128, AdmitLoopback},
		{"198.18.0.7", ipproto.TCP, 0, AdmitNone},
		{"::2", ipproto.TCP, 0, AdmitNone},
		{"2001:db8::1", ipproto.ICMPv6, 135, AdmitNeighbourDiscovery},
		{"2001:db8::1", ipproto.ICMPv6, 133, AdmitNeighbourDiscovery},
		{"2001:db8::1", ipproto.ICMPv6, 137, AdmitNeighbourDiscovery},
		{"fe80::1", ipproto.ICMPv6, 143, AdmitNeighbourDiscovery},
		{"fe80::1", ipproto.ICMPv6, 130, AdmitNeighbourDiscovery},
		{"2001:db8::1", ipproto.ICMPv6, 128, AdmitNone},
		{"2001:db8::1", ipproto.ICMPv6, 138, AdmitNone},
		{"2001:db8::1", ipproto.ICMPv6, 129, AdmitNone},
		{"198.18.0.7", ipproto.ICMP, 135, AdmitNone}, // icmp, not icmpv6
	}
	for _, tt := range tests {
		if got := Admits(netip.MustParseAddr(tt.peer), tt.proto, tt.typ); got != tt.want {
			t.Errorf("Admits(%s, %v, %d) = %q, want %q", tt.peer, tt.proto, tt.typ, got, tt.want)
		}
	}
}
