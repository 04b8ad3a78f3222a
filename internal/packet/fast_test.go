package packet

import (
	"encoding/binary"
	"testing"

	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// checkFast fails t unless Decode (which takes decodeFast first) and the
// parser alone fill the same Packet from data.
func checkFast(t *testing.T, d *Decoder, data []byte) {
	t.Helper()
	var got, want Packet
	d.Decode(data, &got)
	d.decodeParser(data, &want)
	if got != want {
		t.Fatalf("Decode and the parser disagree on % x\n got %+v\n want %+v", data, got, want)
	}
}

// TestFastMatchesParser holds the hand-written fast path to the parser on
// the seeds and on every variant of them with one header field bent: the
// lengths, the fragment bits, the protocol, the header lengths, and every
// truncation.
func TestFastMatchesParser(t *testing.T) {
	var d Decoder
	seeds := seedPackets()
	seeds["ipv4-tcp-options-only"] = packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP,
		SrcPort: 40000, DstPort: 443, TCPFlags: SYN | ACK, TCPOptions: packettest.LinuxSYNOptions()})
	bends := []struct {
		name string
		bend func(b []byte)
	}{
		{"as is", func([]byte) {}},
		{"total length 0", func(b []byte) { binary.BigEndian.PutUint16(b[2:], 0) }},
		{"total length 19", func(b []byte) { binary.BigEndian.PutUint16(b[2:], 19) }},
		{"total length 20", func(b []byte) { binary.BigEndian.PutUint16(b[2:], 20) }},
		{"total length short", func(b []byte) { binary.BigEndian.PutUint16(b[2:], uint16(len(b)-3)) }},
		{"total length long", func(b []byte) { binary.BigEndian.PutUint16(b[2:], uint16(len(b)+9)) }},
		{"header length 4", func(b []byte) { b[0] = b[0]&0xf0 | 4 }},
		{"header length 6", func(b []byte) { b[0] = b[0]&0xf0 | 6 }},
		{"header length 15", func(b []byte) { b[0] = b[0]&0xf0 | 15 }},
		{"more fragments", func(b []byte) { b[6] |= 0x20 }},
		{"fragment offset", func(b []byte) { b[7] |= 1 }},
		{"don't fragment", func(b []byte) { b[6] |= 0x40 }},
		{"protocol udp", func(b []byte) { b[9] = byte(ipproto.UDP) }},
		{"protocol tcp", func(b []byte) { b[9] = byte(ipproto.TCP) }},
		{"protocol icmp", func(b []byte) { b[9] = byte(ipproto.ICMP) }},
		{"tcp data offset 4", func(b []byte) { bendL4(b, 12, 0x40) }},
		{"tcp data offset 15", func(b []byte) { bendL4(b, 12, 0xf0) }},
		{"tcp data offset 6", func(b []byte) { bendL4(b, 12, 0x60) }},
		{"udp length 7", func(b []byte) { bendL4(b, 4, 0); bendL4(b, 5, 7) }},
		{"udp length 0", func(b []byte) { bendL4(b, 4, 0); bendL4(b, 5, 0) }},
		{"bad ipv4 option", func(b []byte) { bendL4(b, -1, 0x44) }},
	}
	for name, seed := range seeds {
		for _, bc := range bends {
			b := append([]byte(nil), seed...)
			if len(b) >= 20 && b[0]>>4 == 4 {
				bc.bend(b)
			}
			t.Run(name+"/"+bc.name, func(t *testing.T) {
				for n := len(b); n >= 0; n-- {
					checkFast(t, &d, b[:n])
				}
			})
		}
	}
}

// bendL4 sets byte i of the IPv4 packet b's transport header (i == -1:
// the first byte after the fixed IPv4 header) to v, when b holds it.
func bendL4(b []byte, i int, v byte) {
	at := 20 + i
	if i >= 0 {
		at = int(b[0]&0x0f)*4 + i
	}
	if at < len(b) {
		b[at] = v
	}
}

// TestFastDecodesCommonPackets makes sure the fast path is taken for what
// it is for (TestFastMatchesParser would pass if it never were).
func TestFastDecodesCommonPackets(t *testing.T) {
	for name, b := range map[string][]byte{
		"ipv4-tcp-syn": tcp4SYN(),
		"ipv4-udp":     packettest.UDP(c4, s4, 5353, 53, []byte("query")),
		"ipv4-tcp-options": packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP,
			SrcPort: 40000, DstPort: 443, TCPFlags: SYN, TCPOptions: packettest.LinuxSYNOptions()}),
	} {
		var p Packet
		if !decodeFast(b, &p) || p.Kind != IP {
			t.Errorf("%s: not decoded by the fast path: %+v", name, p)
		}
	}
	for name, b := range map[string][]byte{
		"ipv4-echo":           packettest.Echo(c4, s4, 7, 1),
		"ipv4-later-fragment": packettest.Fragments(packettest.UDP(c4, s4, 1, 2, make([]byte, 64)), 32, 5)[1],
		"ipv6-udp":            udp6DNS(),
	} {
		var p Packet
		if decodeFast(b, &p) || p != (Packet{}) {
			t.Errorf("%s: taken by the fast path: %+v", name, p)
		}
	}
}
