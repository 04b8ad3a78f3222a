package packet

import (
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/google/gopacket/layers"
)

// seedPackets are the fuzz seeds added in code, on top of the committed
// corpus in testdata/fuzz/FuzzDecode: one of each kind the decoder knows.
func seedPackets() map[string][]byte {
	frags4 := packettest.Fragments(packettest.UDP(c4, s4, 5353, 53, make([]byte, 100)), 32, 0x1234)
	frags6 := packettest.Fragments(udp6Ext(packettest.Ext{Type: ipproto.HopByHop}, packettest.Ext{Type: ipproto.DestOpts}), 48, 7)
	return map[string][]byte{
		"ipv4-tcp-syn": tcp4SYN(),
		"ipv4-options-tcp-options": packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP, SrcPort: 40000, DstPort: 22,
			TCPFlags: SYN, TCPOptions: packettest.LinuxSYNOptions(),
			IPv4Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}}),
		"ipv4-udp":             packettest.UDP(c4, s4, 5353, 53, []byte("query")),
		"ipv4-echo":            packettest.Echo(c4, s4, 7, 1),
		"ipv4-error-udp":       packettest.ICMPError(s4, c4, 3, 3, packettest.UDP(c4, s4, 5353, 53, nil)),
		"ipv4-error-echo":      packettest.ICMPError(r4, c4, 11, 0, packettest.Echo(c4, s4, 9, 2)),
		"ipv4-first-fragment":  frags4[0],
		"ipv4-later-fragment":  frags4[1],
		"ipv4-gre":             packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: 47, Payload: make([]byte, 8)}),
		"ipv6-udp":             udp6DNS(),
		"ipv6-tcp-syn":         packettest.TCP(c6, s6, 40000, 443, SYN),
		"ipv6-ext-icmpv6-echo": extICMP6(),
		"ipv6-first-fragment":  frags6[0],
		"ipv6-later-fragment":  frags6[1],
		"ipv6-error-tcp-ext": packettest.ICMPError(r6, c6, 2, 0, packettest.MustBuild(packettest.Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.TCP,
			SrcPort: 40000, DstPort: 443, TCPFlags: SYN, Ext: []packettest.Ext{{Type: ipproto.HopByHop}, {Type: ipproto.DestOpts}}})),
		"ipv6-error-fragment":  packettest.ICMPError(r6, c6, 3, 1, frags6[1]),
		"ipv6-16-ext":          udp6Ext(repeatExt(16)...),
		"ipv6-17-ext":          udp6Ext(repeatExt(17)...),
		"ipv6-atomic-fragment": udp6Ext(packettest.Ext{Type: ipproto.Fragment, FragID: 77}),
		"garbage":              []byte("GET / HTTP/1.1\r\n\r\n"),
	}
}

// FuzzDecode: Decode never panics, agrees with the reference decoder on
// every field, with gopacket's full decoder where both are defined
// (checkGopacket) and with its own parser path (checkFast), and what it
// calls IP is consistent: version 4 or 6 with addresses of that family,
// transport fields only where they belong.
func FuzzDecode(f *testing.F) {
	for _, b := range seedPackets() {
		f.Add(b)
		f.Add(b[:len(b)*2/3])
	}
	var d Decoder // shared across inputs: no state may leak from one to the next
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Packet
		d.Decode(data, &p)
		if ref := refDecode(data); p != ref {
			t.Fatalf("Decode and the reference disagree\n got %+v\n ref %+v", p, ref)
		}
		checkInvariants(t, p)
		checkGopacket(t, data, p)
		checkFast(t, &d, data)
	})
}

func checkInvariants(t *testing.T, p Packet) {
	t.Helper()
	if p.Kind == Unknown {
		if p != (Packet{}) {
			t.Fatalf("Unknown packet with fields set: %+v", p)
		}
		return
	}
	family := func(x netip.Addr) bool {
		if p.Version == 4 {
			return x.Is4()
		}
		return x.Is6()
	}
	switch {
	case p.Kind != IP:
		t.Fatalf("kind %d", p.Kind)
	case p.Version != 4 && p.Version != 6:
		t.Fatalf("IP packet of version %d", p.Version)
	case !p.Src.IsValid() || !p.Dst.IsValid() || !family(p.Src) || !family(p.Dst):
		t.Fatalf("IPv%d packet with addresses %v, %v", p.Version, p.Src, p.Dst)
	case p.Version == 4 && p.Length < 20, p.Version == 6 && p.Length < 41:
		t.Fatalf("IPv%d packet of length %d", p.Version, p.Length)
	case p.Frag == LaterFragment && (p.HasTransport || p.HasInner):
		t.Fatalf("later fragment with a transport header: %+v", p)
	case p.Frag == NotFragment && p.Version == 4 && p.FragID != 0:
		t.Fatalf("IPv4 non-fragment with a fragment id: %+v", p)
	}
	decodable := p.Proto == ipproto.TCP || p.Proto == ipproto.UDP ||
		(p.Version == 4 && p.Proto == ipproto.ICMP) || (p.Version == 6 && p.Proto == ipproto.ICMPv6)
	if p.Frag != LaterFragment && p.HasTransport != decodable {
		t.Fatalf("protocol %d with HasTransport %v: %+v", p.Proto, p.HasTransport, p)
	}
	icmp := p.Proto == ipproto.ICMP || p.Proto == ipproto.ICMPv6
	if !icmp && (p.ICMPType != 0 || p.ICMPCode != 0 || p.ICMPID != 0 || p.HasInner) {
		t.Fatalf("ICMP fields on protocol %d: %+v", p.Proto, p)
	}
	if icmp && (p.SrcPort != 0 || p.DstPort != 0 || p.TCPFlags != 0) {
		t.Fatalf("ports on ICMP: %+v", p)
	}
	if p.HasInner && (!icmpError(p.Version, p.ICMPType) || !family(p.Inner.Src) || !family(p.Inner.Dst)) {
		t.Fatalf("inner tuple %+v on ICMP type %d of IPv%d", p.Inner, p.ICMPType, p.Version)
	}
	if !p.HasInner && p.Inner != (Tuple{}) {
		t.Fatalf("inner tuple without HasInner: %+v", p)
	}
}
