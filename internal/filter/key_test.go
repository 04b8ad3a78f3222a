package filter

import (
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// Addresses: 198.18.0.0/15 and 2001:db8::/32 only.
const (
	c4 = "198.18.0.1" // a client
	s4 = "198.18.0.2" // a server
	r4 = "198.18.1.1" // a router
	c6 = "2001:db8::1"
	s6 = "2001:db8::2"
)

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestKeyOf(t *testing.T) {
	tests := []struct {
		name         string
		pkt          []byte
		dir          direction.Dir
		want         Key
		wantOtherDir Key
	}{
		{"tcp", packettest.TCP(c4, s4, 40000, 443, packet.SYN), direction.Ingress,
			Key{Dir: direction.Ingress, Proto: 6, Peer: a(c4), Port: 443},
			Key{Dir: direction.Egress, Proto: 6, Peer: a(s4), Port: 443}},
		{"udp6", packettest.UDP(c6, s6, 5353, 53, []byte("query")), direction.Egress,
			Key{Dir: direction.Egress, Proto: 17, Peer: a(s6), Port: 53},
			Key{Dir: direction.Ingress, Proto: 17, Peer: a(c6), Port: 53}},
		{"icmp", packettest.ICMPError(r4, c4, 3, 4, packettest.TCP(c4, s4, 40000, 443, packet.SYN)), direction.Ingress,
			Key{Dir: direction.Ingress, Proto: 1, Peer: a(r4), Type: 3, Code: 4},
			Key{Dir: direction.Egress, Proto: 1, Peer: a(c4), Type: 3, Code: 4}},
		{"icmpv6", packettest.Echo(c6, s6, 1, 1), direction.Ingress,
			Key{Dir: direction.Ingress, Proto: 58, Peer: a(c6), Type: 128},
			Key{Dir: direction.Egress, Proto: 58, Peer: a(s6), Type: 128}},
		{"other protocol", packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: 47}), direction.Ingress,
			Key{Dir: direction.Ingress, Proto: 47, Peer: a(c4)},
			Key{Dir: direction.Egress, Proto: 47, Peer: a(s4)}},
		{"later fragment", packettest.Fragments(packettest.UDP(c4, s4, 1, 53, make([]byte, 64)), 32, 5)[1], direction.Ingress,
			Key{Dir: direction.Ingress, Proto: 17, Peer: a(c4)},
			Key{Dir: direction.Egress, Proto: 17, Peer: a(s4)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d packet.Decoder
			var p packet.Packet
			d.Decode(tc.pkt, &p)
			if got := KeyOf(&p, tc.dir); got != tc.want {
				t.Errorf("KeyOf(%v) = %+v, want %+v", tc.dir, got, tc.want)
			}
			if got := KeyOf(&p, 1-tc.dir); got != tc.wantOtherDir {
				t.Errorf("KeyOf(%v) = %+v, want %+v", 1-tc.dir, got, tc.wantOtherDir)
			}
		})
	}
}
