package packet

import (
	"encoding/binary"
	"net/netip"

	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// decodeFast decodes the common packet, an unfragmented IPv4 datagram
// carrying TCP or UDP whose headers are consistent, straight from its
// bytes into p, and reports whether it did. It fills p exactly as the
// DecodingLayerParser path does for the same bytes (TestFastMatchesParser
// and FuzzDecode hold the two together); for anything else (IPv6, a
// fragment, ICMP, other protocols, a header the parser would reject or
// stop short of) it returns false without touching p, and Decode takes the
// parser's path. The parser's path was about a quarter of the time of a
// replay of small packets (fwctl replay, issue 15).
func decodeFast(data []byte, p *Packet) bool {
	if len(data) < 20 || data[0]>>4 != 4 {
		return false
	}
	ff := binary.BigEndian.Uint16(data[6:8])
	proto := ipproto.Proto(data[9])
	if ff&0x3fff != 0 || (proto != ipproto.TCP && proto != ipproto.UDP) {
		return false // a fragment (offset or more-fragments), or not TCP/UDP
	}
	hlen := int(data[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(data[2:4]))
	if total == 0 {
		total = len(data) // TCP segmentation offload, as ip4Layer takes it
	}
	if hlen < 20 || hlen > len(data) || hlen > total || total > 0xffff ||
		(hlen > 20 && !validOptions(data[20:hlen], 3)) {
		return false
	}
	l4 := data[hlen:min(total, len(data))]
	var sport, dport uint16
	var flags uint8
	switch proto {
	case ipproto.TCP:
		if len(l4) < 20 {
			return false
		}
		thl := int(l4[12]>>4) * 4
		if thl < 20 || thl > len(l4) || (thl > 20 && !validOptions(l4[20:thl], 2)) {
			return false
		}
		flags = l4[13]
	default: // UDP
		if len(l4) < 8 {
			return false
		}
		if n := binary.BigEndian.Uint16(l4[4:6]); n != 0 && n < 8 {
			return false
		}
	}
	sport = binary.BigEndian.Uint16(l4[0:2])
	dport = binary.BigEndian.Uint16(l4[2:4])
	// Field by field: a composite literal is built on the stack and
	// copied (BenchmarkDecode/IPv4TCP measured it slower).
	*p = Packet{}
	p.Kind, p.Version, p.Proto = IP, 4, proto
	p.Src = netip.AddrFrom4([4]byte(data[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(data[16:20]))
	p.Length = total
	p.HasTransport, p.SrcPort, p.DstPort, p.TCPFlags = true, sport, dport, flags
	return true
}
