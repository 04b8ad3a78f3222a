package packet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// Addresses: 198.18.0.0/15 and 2001:db8::/32 only.
const (
	c4 = "198.18.0.1" // a client
	s4 = "198.18.0.2" // a server
	r4 = "198.18.1.1" // a router
	c6 = "2001:db8::1"
	s6 = "2001:db8::2"
	r6 = "2001:db8:1::1"
)

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

func decode(b []byte) Packet {
	var d Decoder
	var p Packet
	d.Decode(b, &p)
	return p
}

func udp6Ext(exts ...packettest.Ext) []byte {
	return packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.UDP, SrcPort: 5353, DstPort: 53, Payload: make([]byte, 100), Ext: exts})
}

// Packets shared by the tests and the benchmarks.
var (
	tcp4SYN  = func() []byte { return packettest.TCP(c4, s4, 40000, 443, SYN) }
	udp6DNS  = func() []byte { return packettest.UDP(c6, s6, 5353, 53, []byte("query")) }
	extICMP6 = func() []byte {
		return packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.ICMPv6, ICMPType: 128, ICMPRest: 7<<16 | 1,
			Ext: []packettest.Ext{{Type: ipproto.HopByHop}, {Type: ipproto.DestOpts, Len: 16}, {Type: ipproto.Routing}}})
	}
	// adversarial: a hop-by-hop header of 2048 bytes of Pad1 options.
	pad1Flood = func() []byte {
		b := packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.TCP, SrcPort: 1, DstPort: 22, TCPFlags: SYN,
			Ext: []packettest.Ext{{Type: ipproto.HopByHop, Len: 2048}}})
		clear(b[42 : 40+2048])
		return b
	}
)

func TestDecode(t *testing.T) {
	synOpts := packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP, SrcPort: 40000, DstPort: 22,
		TCPFlags: SYN | ECE | CWR, TCPOptions: packettest.LinuxSYNOptions(),
		IPv4Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}})
	frags4 := packettest.Fragments(packettest.UDP(c4, s4, 5353, 53, make([]byte, 100)), 32, 0x1234)
	frags6 := packettest.Fragments(udp6Ext(packettest.Ext{Type: ipproto.HopByHop}, packettest.Ext{Type: ipproto.DestOpts}), 48, 0xdeadbeef)
	udpQuoted := packettest.UDP(c4, s4, 5353, 53, []byte("query"))
	tcpQuoted6 := packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.TCP, SrcPort: 40000, DstPort: 443, TCPFlags: SYN,
		Ext: []packettest.Ext{{Type: ipproto.HopByHop}, {Type: ipproto.DestOpts}}})
	tso := packettest.TCP(c4, s4, 40000, 80, ACK|PSH)
	binary.BigEndian.PutUint16(tso[2:4], 0)
	tso = append(tso, make([]byte, 60)...)

	tests := []struct {
		name string
		pkt  []byte
		want Packet
	}{
		{"ipv4 tcp syn", tcp4SYN(), Packet{Kind: IP, Version: 4, Proto: 6, Src: a(c4), Dst: a(s4), Length: 40,
			HasTransport: true, SrcPort: 40000, DstPort: 443, TCPFlags: SYN}},
		{"ipv4 options, tcp options", synOpts, Packet{Kind: IP, Version: 4, Proto: 6, Src: a(c4), Dst: a(s4), Length: 28 + 20 + 20,
			HasTransport: true, SrcPort: 40000, DstPort: 22, TCPFlags: SYN | ECE | CWR}},
		{"ipv4 tcp length zero (tso)", tso, Packet{Kind: IP, Version: 4, Proto: 6, Src: a(c4), Dst: a(s4), Length: 100,
			HasTransport: true, SrcPort: 40000, DstPort: 80, TCPFlags: ACK | PSH}},
		{"ipv4 udp", packettest.UDP(c4, s4, 5353, 53, []byte("query")), Packet{Kind: IP, Version: 4, Proto: 17, Src: a(c4), Dst: a(s4), Length: 33,
			HasTransport: true, SrcPort: 5353, DstPort: 53}},
		{"ipv4 echo", packettest.Echo(c4, s4, 7, 1), Packet{Kind: IP, Version: 4, Proto: 1, Src: a(c4), Dst: a(s4), Length: 28,
			HasTransport: true, ICMPType: 8, ICMPID: 7}},
		{"ipv4 echo reply", packettest.EchoReply(s4, c4, 7, 1), Packet{Kind: IP, Version: 4, Proto: 1, Src: a(s4), Dst: a(c4), Length: 28,
			HasTransport: true, ICMPType: 0, ICMPID: 7}},
		{"ipv4 port unreachable quoting udp", packettest.ICMPError(s4, c4, 3, 3, udpQuoted), Packet{Kind: IP, Version: 4, Proto: 1,
			Src: a(s4), Dst: a(c4), Length: 28 + 33, HasTransport: true, ICMPType: 3, ICMPCode: 3,
			HasInner: true, Inner: Tuple{Proto: 17, Src: a(c4), Dst: a(s4), SrcPort: 5353, DstPort: 53}}},
		{"ipv4 time exceeded quoting tcp header+8", packettest.ICMPError(r4, c4, 11, 0, tcp4SYN()[:28]), Packet{Kind: IP, Version: 4, Proto: 1,
			Src: a(r4), Dst: a(c4), Length: 28 + 28, HasTransport: true, ICMPType: 11,
			HasInner: true, Inner: Tuple{Proto: 6, Src: a(c4), Dst: a(s4), SrcPort: 40000, DstPort: 443}}},
		{"ipv4 frag needed quoting echo", packettest.ICMPError(r4, c4, 3, 4, packettest.Echo(c4, s4, 9, 2)), Packet{Kind: IP, Version: 4, Proto: 1,
			Src: a(r4), Dst: a(c4), Length: 28 + 28, HasTransport: true, ICMPType: 3, ICMPCode: 4,
			HasInner: true, Inner: Tuple{Proto: 1, Src: a(c4), Dst: a(s4), SrcPort: 9, DstPort: 9}}},
		{"ipv4 error quoting a short header", packettest.ICMPError(r4, c4, 11, 0, udpQuoted[:22]), Packet{Kind: IP, Version: 4, Proto: 1,
			Src: a(r4), Dst: a(c4), Length: 28 + 22, HasTransport: true, ICMPType: 11}},
		{"ipv4 error quoting ipv6", packettest.ICMPError(r4, c4, 3, 3, udp6DNS()), Packet{Kind: IP, Version: 4, Proto: 1,
			Src: a(r4), Dst: a(c4), Length: 28 + len(udp6DNS()), HasTransport: true, ICMPType: 3, ICMPCode: 3}},
		{"ipv4 error quoting a later fragment", packettest.ICMPError(r4, c4, 11, 1, frags4[1]), Packet{Kind: IP, Version: 4, Proto: 1,
			Src: a(r4), Dst: a(c4), Length: 28 + len(frags4[1]), HasTransport: true, ICMPType: 11, ICMPCode: 1}},
		{"ipv4 first fragment", frags4[0], Packet{Kind: IP, Version: 4, Proto: 17, Src: a(c4), Dst: a(s4), Length: 52,
			Frag: FirstFragment, FragID: 0x1234, HasTransport: true, SrcPort: 5353, DstPort: 53}},
		{"ipv4 later fragment", frags4[1], Packet{Kind: IP, Version: 4, Proto: 17, Src: a(c4), Dst: a(s4), Length: 52,
			Frag: LaterFragment, FragID: 0x1234}},
		{"ipv4 last fragment", frags4[3], Packet{Kind: IP, Version: 4, Proto: 17, Src: a(c4), Dst: a(s4), Length: 32,
			Frag: LaterFragment, FragID: 0x1234}},
		{"ipv4 gre", packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: 47, Payload: make([]byte, 8)}), Packet{Kind: IP, Version: 4,
			Proto: 47, Src: a(c4), Dst: a(s4), Length: 28}},
		{"ipv4 ipip", packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: 4, Payload: tcp4SYN()}), Packet{Kind: IP, Version: 4,
			Proto: 4, Src: a(c4), Dst: a(s4), Length: 60}},
		{"ipv6 udp", udp6DNS(), Packet{Kind: IP, Version: 6, Proto: 17, Src: a(c6), Dst: a(s6), Length: 53,
			HasTransport: true, SrcPort: 5353, DstPort: 53}},
		{"ipv6 tcp syn", packettest.TCP(c6, s6, 40000, 443, SYN), Packet{Kind: IP, Version: 6, Proto: 6, Src: a(c6), Dst: a(s6), Length: 60,
			HasTransport: true, SrcPort: 40000, DstPort: 443, TCPFlags: SYN}},
		{"ipv6 hop-by-hop, destination, routing, tcp", packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.TCP, SrcPort: 40001,
			DstPort: 22, TCPFlags: SYN, Ext: []packettest.Ext{{Type: ipproto.HopByHop}, {Type: ipproto.DestOpts, Len: 24}, {Type: ipproto.Routing, Len: 16}}}),
			Packet{Kind: IP, Version: 6, Proto: 6, Src: a(c6), Dst: a(s6), Length: 40 + 48 + 20,
				HasTransport: true, SrcPort: 40001, DstPort: 22, TCPFlags: SYN}},
		{"ipv6 extensions, icmpv6 echo", extICMP6(), Packet{Kind: IP, Version: 6, Proto: 58, Src: a(c6), Dst: a(s6), Length: 40 + 32 + 8,
			HasTransport: true, ICMPType: 128, ICMPID: 7}},
		{"ipv6 destination options only, udp", udp6Ext(packettest.Ext{Type: ipproto.DestOpts}), Packet{Kind: IP, Version: 6, Proto: 17,
			Src: a(c6), Dst: a(s6), Length: 40 + 8 + 108, HasTransport: true, SrcPort: 5353, DstPort: 53}},
		{"ipv6 pad1 flood", pad1Flood(), Packet{Kind: IP, Version: 6, Proto: 6, Src: a(c6), Dst: a(s6), Length: 40 + 2048 + 20,
			HasTransport: true, SrcPort: 1, DstPort: 22, TCPFlags: SYN}},
		{"ipv6 16 extension headers", udp6Ext(repeatExt(16)...), Packet{Kind: IP, Version: 6, Proto: 17, Src: a(c6), Dst: a(s6),
			Length: 40 + 16*8 + 108, HasTransport: true, SrcPort: 5353, DstPort: 53}},
		// Issue 16: a chain of any length is walked, as conntrack does.
		{"ipv6 40 extension headers", udp6Ext(repeatExt(40)...), Packet{Kind: IP, Version: 6, Proto: 17, Src: a(c6), Dst: a(s6),
			Length: 40 + 40*8 + 108, HasTransport: true, SrcPort: 5353, DstPort: 53}},
		{"ipv6 fragment header between runs", udp6Ext(append(append(repeatExt(20), packettest.Ext{Type: ipproto.Fragment, FragID: 5}), repeatExt(20)...)...),
			Packet{Kind: IP, Version: 6, Proto: 17, Src: a(c6), Dst: a(s6), Length: 40 + 41*8 + 108, FragID: 5,
				HasTransport: true, SrcPort: 5353, DstPort: 53}},
		{"ipv6 first fragment", frags6[0], Packet{Kind: IP, Version: 6, Proto: 17, Src: a(c6), Dst: a(s6), Length: 40 + 8 + 8 + 48,
			Frag: FirstFragment, FragID: 0xdeadbeef, HasTransport: true, SrcPort: 5353, DstPort: 53}},
		{"ipv6 later fragment", frags6[1], Packet{Kind: IP, Version: 6, Proto: 60, Src: a(c6), Dst: a(s6), Length: 40 + 8 + 8 + 48,
			Frag: LaterFragment, FragID: 0xdeadbeef}},
		{"ipv6 atomic fragment", udp6Ext(packettest.Ext{Type: ipproto.Fragment, FragID: 77}), Packet{Kind: IP, Version: 6, Proto: 17,
			Src: a(c6), Dst: a(s6), Length: 40 + 8 + 108, FragID: 77, HasTransport: true, SrcPort: 5353, DstPort: 53}},
		{"ipv6 later fragment built directly", udp6Ext(packettest.Ext{Type: ipproto.Fragment, FragOffset: 3, FragID: 78}), Packet{Kind: IP,
			Version: 6, Proto: 17, Src: a(c6), Dst: a(s6), Length: 40 + 8 + 108, Frag: LaterFragment, FragID: 78}},
		{"ipv6 packet too big quoting tcp with extensions", packettest.ICMPError(r6, c6, 2, 0, tcpQuoted6), Packet{Kind: IP, Version: 6,
			Proto: 58, Src: a(r6), Dst: a(c6), Length: 40 + 8 + len(tcpQuoted6), HasTransport: true, ICMPType: 2,
			HasInner: true, Inner: Tuple{Proto: 6, Src: a(c6), Dst: a(s6), SrcPort: 40000, DstPort: 443}}},
		{"ipv6 port unreachable quoting udp", packettest.ICMPError(s6, c6, 1, 4, udp6DNS()), Packet{Kind: IP, Version: 6, Proto: 58,
			Src: a(s6), Dst: a(c6), Length: 40 + 8 + 53, HasTransport: true, ICMPType: 1, ICMPCode: 4,
			HasInner: true, Inner: Tuple{Proto: 17, Src: a(c6), Dst: a(s6), SrcPort: 5353, DstPort: 53}}},
		{"ipv6 time exceeded quoting echo", packettest.ICMPError(r6, c6, 3, 0, packettest.Echo(c6, s6, 5, 1)), Packet{Kind: IP, Version: 6, Proto: 58,
			Src: a(r6), Dst: a(c6), Length: 40 + 8 + 48, HasTransport: true, ICMPType: 3,
			HasInner: true, Inner: Tuple{Proto: 58, Src: a(c6), Dst: a(s6), SrcPort: 5, DstPort: 5}}},
		{"ipv6 error quoting a later fragment", packettest.ICMPError(r6, c6, 3, 1, frags6[1]), Packet{Kind: IP, Version: 6, Proto: 58,
			Src: a(r6), Dst: a(c6), Length: 40 + 8 + len(frags6[1]), HasTransport: true, ICMPType: 3, ICMPCode: 1}},
		{"ipv6 error quoting ipv4", packettest.ICMPError(r6, c6, 1, 0, tcp4SYN()), Packet{Kind: IP, Version: 6, Proto: 58,
			Src: a(r6), Dst: a(c6), Length: 40 + 8 + 40, HasTransport: true, ICMPType: 1}},
		{"ipv6 neighbour solicitation", packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.ICMPv6, ICMPType: 135,
			Payload: make([]byte, 16)}), Packet{Kind: IP, Version: 6, Proto: 58, Src: a(c6), Dst: a(s6), Length: 64,
			HasTransport: true, ICMPType: 135}},
		{"ipv6 no next header", packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: 59, Ext: []packettest.Ext{{Type: ipproto.DestOpts}}}),
			Packet{Kind: IP, Version: 6, Proto: 59, Src: a(c6), Dst: a(s6), Length: 48}},
		{"ipv6 esp", packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: 50, Payload: make([]byte, 24)}), Packet{Kind: IP, Version: 6,
			Proto: 50, Src: a(c6), Dst: a(s6), Length: 64}},
		{"ipv6 ipv4-mapped addresses stay ipv6", packettest.TCP("::ffff:198.18.0.1", "::ffff:198.18.0.2", 1, 2, SYN), Packet{Kind: IP,
			Version: 6, Proto: 6, Src: a("::ffff:198.18.0.1"), Dst: a("::ffff:198.18.0.2"), Length: 60,
			HasTransport: true, SrcPort: 1, DstPort: 2, TCPFlags: SYN}},
	}
	var d Decoder // one decoder for all: nothing may carry over between packets
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			d.Decode(tc.pkt, &p)
			if p != tc.want {
				t.Errorf("Decode\n got %+v\nwant %+v", p, tc.want)
			}
			if ref := refDecode(tc.pkt); p != ref {
				t.Errorf("Decode and the reference disagree\n got %+v\n ref %+v", p, ref)
			}
		})
	}
}

func repeatExt(n int) []packettest.Ext {
	e := make([]packettest.Ext, n)
	for i := range e {
		e[i].Type = ipproto.DestOpts
	}
	return e
}

// TestDecodeUnknown: packets that must be dropped as Unknown.
func TestDecodeUnknown(t *testing.T) {
	mod := func(b []byte, f func(b []byte)) []byte {
		b = append([]byte(nil), b...)
		f(b)
		return b
	}
	tcp4 := tcp4SYN()
	tcp6 := packettest.TCP(c6, s6, 40000, 443, SYN)
	frags4 := packettest.Fragments(packettest.TCP(c4, s4, 40000, 443, SYN), 8, 1)
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"nil", nil},
		{"one byte", []byte{0x45}},
		{"version 0", mod(tcp4, func(b []byte) { b[0] = 0x05 })},
		{"version 5", mod(tcp4, func(b []byte) { b[0] = 0x55 })},
		{"version 15", mod(tcp6, func(b []byte) { b[0] = 0xf0 })},
		{"text", []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n")},
		{"ethernet frame", append([]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0x66, 0x77, 0x88, 0x99, 0xaa, 0x08, 0x00}, tcp4...)},
		{"ipv4 header only", tcp4[:20]},
		{"ipv4 ihl 4", mod(tcp4, func(b []byte) { b[0] = 0x44 })},
		{"ipv4 ihl beyond data", mod(tcp4, func(b []byte) { b[0] = 0x4f })[:40]},
		{"ipv4 total length below header", mod(tcp4, func(b []byte) { b[3] = 19 })},
		{"ipv4 total length short of tcp", mod(tcp4, func(b []byte) { b[3] = 30 })},
		{"ipv4 option length 2", mod(packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.UDP,
			IPv4Options: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}}),
			func(b []byte) { b[21] = 2 })},
		{"ipv4 option beyond header", mod(packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.UDP,
			IPv4Options: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}}),
			func(b []byte) { b[21] = 5 })},
		{"ipv4 tcp data offset 4", mod(tcp4, func(b []byte) { b[32] = 0x40 })},
		{"ipv4 tcp data offset beyond data", mod(tcp4, func(b []byte) { b[32] = 0x60 })},
		{"ipv4 tcp option length 1", mod(packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP, TCPFlags: SYN,
			TCPOptions: packettest.LinuxSYNOptions()}), func(b []byte) { b[41] = 1 })},
		{"ipv4 udp length 7", mod(packettest.UDP(c4, s4, 1, 2, nil), func(b []byte) { b[25] = 7 })},
		{"ipv4 icmp 7 bytes", packettest.Echo(c4, s4, 1, 1)[:27]},
		{"ipv4 tiny first fragment", frags4[0]},
		{"ipv6 header only", tcp6[:40]},
		{"ipv6 39 bytes", tcp6[:39]},
		{"ipv6 payload length 0", mod(tcp6, func(b []byte) { b[4], b[5] = 0, 0 })},
		{"ipv6 payload length short of tcp", mod(tcp6, func(b []byte) { b[5] = 10 })},
		{"ipv6 jumbogram", mod(packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.TCP, Ext: []packettest.Ext{{Type: ipproto.HopByHop}}}),
			func(b []byte) { b[4], b[5] = 0, 0; copy(b[42:], []byte{0xc2, 4, 0, 1, 0, 0}) })},
		{"ipv6 hop-by-hop cut", packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.TCP, Ext: []packettest.Ext{{Type: ipproto.HopByHop, Len: 16}}})[:50]},
		{"ipv6 hop-by-hop length beyond payload", mod(packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: 59,
			Ext: []packettest.Ext{{Type: ipproto.HopByHop}}}), func(b []byte) { b[41] = 1 })},
		{"ipv6 routing, nothing after", mod(packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: 59, Ext: []packettest.Ext{{Type: ipproto.Routing}}}),
			func(b []byte) { b[40] = 6 })},
		{"ipv6 long chain cut", udp6Ext(repeatExt(40)...)[:40+39*8]},
		{"ipv6 two fragment headers", udp6Ext(packettest.Ext{Type: ipproto.Fragment, MoreFragments: true}, packettest.Ext{Type: ipproto.Fragment, MoreFragments: true})},
		{"ipv6 fragment header cut", packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: 59, Ext: []packettest.Ext{{Type: ipproto.DestOpts}, {Type: ipproto.Fragment}}})[:52]},
		{"ipv6 icmpv6 4 bytes", packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.ICMPv6, ICMPType: 128})[:44]},
		{"ipv6 udp cut", udp6DNS()[:47]},
	}
	var d Decoder
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			p.Kind, p.SrcPort = IP, 99 // Decode must overwrite everything
			d.Decode(tc.pkt, &p)
			if p != (Packet{}) {
				t.Errorf("Decode = %+v, want the zero Packet (Unknown)", p)
			}
			if ref := refDecode(tc.pkt); ref != (Packet{}) {
				t.Errorf("the reference decodes it: %+v", ref)
			}
		})
	}
}

// TestDecodeTruncated cuts valid packets at every length: below where
// their headers end they are Unknown, from there on they decode exactly
// like the whole packet (Length comes from the header), except that an
// ICMP error's inner tuple appears only once the quoted headers are in.
func TestDecodeTruncated(t *testing.T) {
	frags6 := packettest.Fragments(udp6Ext(packettest.Ext{Type: ipproto.HopByHop}, packettest.Ext{Type: ipproto.DestOpts}), 48, 9)
	tests := []struct {
		name       string
		pkt        []byte
		headersEnd int // first length that decodes
		innerEnd   int // first length with HasInner (0: never)
	}{
		{"ipv4 tcp", tcp4SYN(), 40, 0},
		{"ipv4 tcp options", packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP, TCPFlags: SYN, TCPOptions: packettest.LinuxSYNOptions(),
			IPv4Options: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}}), 24 + 40, 0},
		{"ipv4 udp", packettest.UDP(c4, s4, 1, 2, make([]byte, 30)), 28, 0},
		{"ipv4 echo", packettest.Echo(c4, s4, 1, 2), 28, 0},
		{"ipv4 later fragment", packettest.Fragments(packettest.UDP(c4, s4, 1, 2, make([]byte, 30)), 16, 3)[1], 20, 0},
		{"ipv4 icmp error", packettest.ICMPError(r4, c4, 3, 3, packettest.UDP(c4, s4, 1, 2, make([]byte, 30))), 28, 28 + 24},
		{"ipv4 icmp error quoting echo", packettest.ICMPError(r4, c4, 11, 0, packettest.Echo(c4, s4, 1, 2)), 28, 28 + 28},
		{"ipv6 udp", udp6DNS(), 48, 0},
		{"ipv6 extensions icmpv6", extICMP6(), 40 + 32 + 8, 0},
		{"ipv6 first fragment", frags6[0], 40 + 8 + 8 + 8 + 8, 0},
		{"ipv6 later fragment", frags6[1], 40 + 8 + 8, 0},
		{"ipv6 icmpv6 error", packettest.ICMPError(r6, c6, 2, 0, packettest.TCP(c6, s6, 1, 2, SYN)), 48, 48 + 40 + 4},
		{"ipv6 icmpv6 error quoting extensions", packettest.ICMPError(r6, c6, 1, 4, udp6Ext(packettest.Ext{Type: ipproto.HopByHop}, packettest.Ext{Type: ipproto.Routing, Len: 24})),
			48, 48 + 40 + 32 + 4},
	}
	var d Decoder
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			full := decode(tc.pkt)
			if full.Kind != IP {
				t.Fatalf("the whole packet does not decode: %+v", full)
			}
			for n := 0; n <= len(tc.pkt); n++ {
				cut := append([]byte(nil), tc.pkt[:n]...) // a fresh backing array: no reads past n go unnoticed by -race or the checks
				var p Packet
				d.Decode(cut, &p)
				want := full
				switch {
				case n < tc.headersEnd:
					want = Packet{}
				case n < tc.innerEnd:
					want.HasInner, want.Inner = false, Tuple{}
				}
				if p != want {
					t.Fatalf("cut at %d of %d:\n got %+v\nwant %+v", n, len(tc.pkt), p, want)
				}
				if ref := refDecode(cut); p != ref {
					t.Fatalf("cut at %d: Decode and the reference disagree\n got %+v\n ref %+v", n, p, ref)
				}
			}
		})
	}
}

// TestDecodeKeepsNoReference: the Packet is a value; changing or reusing
// the buffer afterwards does not change it.
func TestDecodeKeepsNoReference(t *testing.T) {
	b := packettest.ICMPError(r6, c6, 1, 4, udp6DNS())
	var d Decoder
	var p Packet
	d.Decode(b, &p)
	want := p
	for i := range b {
		b[i] = 0xff
	}
	if p != want {
		t.Fatalf("the Packet changed with the buffer: %+v, was %+v", p, want)
	}
	if !p.HasInner || p.Src != a(r6) {
		t.Fatalf("unexpected decode: %+v", p)
	}
}

func TestDecodeNoAllocs(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"ipv4 tcp", tcp4SYN()},
		{"ipv4 tcp linux syn options", packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP, TCPFlags: SYN,
			TCPOptions: packettest.LinuxSYNOptions(), IPv4Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}})},
		{"ipv4 udp", packettest.UDP(c4, s4, 5353, 53, []byte("query"))},
		{"ipv6 udp", udp6DNS()},
		{"ipv6 extensions icmpv6", extICMP6()},
		{"ipv6 pad1 flood", pad1Flood()},
		{"ipv4 first fragment", packettest.Fragments(packettest.UDP(c4, s4, 1, 2, make([]byte, 64)), 32, 5)[0]},
		{"ipv4 later fragment", packettest.Fragments(packettest.UDP(c4, s4, 1, 2, make([]byte, 64)), 32, 5)[1]},
		{"ipv6 later fragment", packettest.Fragments(udp6DNS(), 8, 5)[1]},
		{"ipv4 icmp error", packettest.ICMPError(r4, c4, 3, 3, tcp4SYN())},
		{"ipv6 icmpv6 error", packettest.ICMPError(r6, c6, 2, 0, udp6DNS())},
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\n")},
		{"truncated ipv4", tcp4SYN()[:30]},
		{"truncated ipv6 extensions", extICMP6()[:60]},
		{"bad tcp option", func() []byte {
			b := packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP, TCPFlags: SYN, TCPOptions: packettest.LinuxSYNOptions()})
			b[41] = 1
			return b
		}()},
		{"long extension header chain", udp6Ext(repeatExt(1000)...)},
	}
	var d Decoder
	var p Packet
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, func() { d.Decode(tc.pkt, &p) }); n != 0 {
				t.Errorf("Decode allocates %v times per packet, want 0", n)
			}
		})
	}
}

// TestDecoderZeroValue: a Decoder is ready to use and decodes the same in
// any order of packets as fresh ones do.
func TestDecoderZeroValue(t *testing.T) {
	pkts := [][]byte{tcp4SYN(), extICMP6(), packettest.Fragments(udp6DNS(), 8, 5)[1], udp6DNS(), []byte{0x60}, pad1Flood(), packettest.Echo(c4, s4, 1, 1)}
	var d Decoder
	for round := range 2 {
		for i, b := range pkts {
			var p Packet
			d.Decode(b, &p)
			if fresh := decode(b); p != fresh {
				t.Errorf("round %d packet %d: reused decoder %+v, fresh %+v", round, i, p, fresh)
			}
		}
	}
}

func TestTuple(t *testing.T) {
	tests := []struct {
		name           string
		pkt, reply     []byte
		want           Tuple
		replyIsReverse bool
	}{
		{"tcp", packettest.TCP(c4, s4, 40000, 443, SYN), packettest.TCP(s4, c4, 443, 40000, SYN|ACK),
			Tuple{Proto: 6, Src: a(c4), Dst: a(s4), SrcPort: 40000, DstPort: 443}, true},
		{"udp6", udp6DNS(), packettest.UDP(s6, c6, 53, 5353, nil),
			Tuple{Proto: 17, Src: a(c6), Dst: a(s6), SrcPort: 5353, DstPort: 53}, true},
		{"echo", packettest.Echo(c4, s4, 7, 1), packettest.EchoReply(s4, c4, 7, 1),
			Tuple{Proto: 1, Src: a(c4), Dst: a(s4), SrcPort: 7, DstPort: 7}, true},
		{"echo6", packettest.Echo(c6, s6, 7, 1), packettest.EchoReply(s6, c6, 7, 1),
			Tuple{Proto: 58, Src: a(c6), Dst: a(s6), SrcPort: 7, DstPort: 7}, true},
		{"echo, other identifier", packettest.Echo(c4, s4, 7, 1), packettest.EchoReply(s4, c4, 8, 1),
			Tuple{Proto: 1, Src: a(c4), Dst: a(s4), SrcPort: 7, DstPort: 7}, false},
		{"tcp, other port", packettest.TCP(c4, s4, 40000, 443, SYN), packettest.TCP(s4, c4, 443, 40001, SYN|ACK),
			Tuple{Proto: 6, Src: a(c4), Dst: a(s4), SrcPort: 40000, DstPort: 443}, false},
		{"later fragment", packettest.Fragments(packettest.UDP(c4, s4, 1, 53, make([]byte, 64)), 32, 5)[1], packettest.UDP(s4, c4, 53, 1, nil),
			Tuple{Proto: 17, Src: a(c4), Dst: a(s4)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, r := decode(tc.pkt), decode(tc.reply)
			if got := p.Tuple(); got != tc.want {
				t.Errorf("Tuple = %+v, want %+v", got, tc.want)
			}
			if got := (p.Tuple().Reverse() == r.Tuple()); got != tc.replyIsReverse {
				t.Errorf("reply %+v is the reverse of %+v: %v, want %v", r.Tuple(), p.Tuple(), got, tc.replyIsReverse)
			}
			if p.Tuple().Reverse().Reverse() != p.Tuple() {
				t.Errorf("Reverse is not an involution on %+v", p.Tuple())
			}
		})
	}
}

// TestInnerIsQuotedTuple: an ICMP error's Inner is the Tuple of the packet
// it quotes, which is how a flow table finds the flow it is related to.
func TestInnerIsQuotedTuple(t *testing.T) {
	quoted := [][]byte{
		packettest.TCP(c4, s4, 40000, 443, SYN), packettest.UDP(c4, s4, 5353, 53, nil), packettest.Echo(c4, s4, 3, 4),
		packettest.TCP(c6, s6, 40000, 443, SYN), udp6DNS(), packettest.Echo(c6, s6, 3, 4), extICMP6(),
		udp6Ext(packettest.Ext{Type: ipproto.HopByHop}, packettest.Ext{Type: ipproto.Fragment, FragID: 1}, packettest.Ext{Type: ipproto.DestOpts}),
	}
	for _, q := range quoted {
		orig := decode(q)
		errTyp := uint8(3)
		router := r4
		if orig.Version == 6 {
			errTyp, router = 1, r6
		}
		p := decode(packettest.ICMPError(router, orig.Src.String(), errTyp, 0, q))
		if !p.HasInner || p.Inner != orig.Tuple() {
			t.Errorf("error quoting %+v: HasInner %v, Inner %+v, want %+v", orig.Tuple(), p.HasInner, p.Inner, orig.Tuple())
		}
	}
}

func TestStrings(t *testing.T) {
	got := strings.Join([]string{Unknown.String(), IP.String(), NotFragment.String(), FirstFragment.String(), LaterFragment.String()}, " ")
	if want := "unknown ip not-fragment first-fragment later-fragment"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func ExampleDecoder() {
	var d Decoder // one per goroutine; the zero value is ready
	var p Packet
	d.Decode(packettest.TCP("198.18.0.1", "198.18.0.2", 40000, 443, SYN), &p)
	fmt.Println(p.Kind, p.Proto, p.Src, p.Dst, p.DstPort, p.TCPFlags == SYN)
	// Output:
	// ip tcp 198.18.0.1 198.18.0.2 443 true
}
