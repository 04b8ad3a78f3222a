package packet

import (
	"path/filepath"
	"testing"

	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

func benchPackets() []struct {
	name string
	pkt  []byte
} {
	return []struct {
		name string
		pkt  []byte
	}{
		{"IPv4TCP", tcp4SYN()},
		{"IPv4TCPLinuxSYN", packettest.MustBuild(packettest.Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP, SrcPort: 40000, DstPort: 443,
			TCPFlags: SYN, TCPOptions: packettest.LinuxSYNOptions()})},
		{"IPv6UDP", udp6DNS()},
		{"IPv6ExtICMPv6", extICMP6()},
		{"IPv4LaterFragment", packettest.Fragments(packettest.UDP(c4, s4, 1, 2, make([]byte, 64)), 32, 5)[1]},
		{"ICMPv4Error", packettest.ICMPError(r4, c4, 3, 3, tcp4SYN())},
		{"Garbage", []byte("GET / HTTP/1.1\r\n\r\n")},
	}
}

// BenchmarkDecode is the Decoder on one packet of each kind: the IPv4
// TCP ones by decodeFast, the others by gopacket's DecodingLayerParser.
func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchPackets() {
		b.Run(bc.name, func(b *testing.B) {
			var d Decoder
			var p Packet
			b.ReportAllocs()
			for b.Loop() {
				d.Decode(bc.pkt, &p)
			}
			if p.Kind != IP && bc.name != "Garbage" {
				b.Fatalf("not decoded: %+v", p)
			}
		})
	}
}

// BenchmarkDecodeHandWritten is the tests' reference decoder (refDecode:
// straight header parsing without gopacket, written for clarity, not
// tuned) on the main packets: what the DecodingLayerParser costs in
// comparison.
func BenchmarkDecodeHandWritten(b *testing.B) {
	for _, bc := range benchPackets()[:4] {
		b.Run(bc.name, func(b *testing.B) {
			var p Packet
			b.ReportAllocs()
			for b.Loop() {
				p = refDecode(bc.pkt)
			}
			if p.Kind != IP && bc.name != "Garbage" {
				b.Fatalf("not decoded: %+v", p)
			}
		})
	}
}

// BenchmarkDecodeCapture decodes the IP packets of real captures
// (../shared/data/pcap, or -capture FILE) in a loop; ns/op is per packet.
func BenchmarkDecodeCapture(b *testing.B) {
	for _, path := range capturePaths(b) {
		pkts := readIPPackets(b, path)
		if len(pkts) == 0 {
			continue
		}
		b.Run(filepath.Base(path), func(b *testing.B) {
			var d Decoder
			var p Packet
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				d.Decode(pkts[i], &p)
				if i++; i == len(pkts) {
					i = 0
				}
			}
		})
	}
}
