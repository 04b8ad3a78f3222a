package packet

import (
	"encoding/binary"
	"net/netip"

	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// icmpQuery says whether an ICMP (version 4) or ICMPv6 (6) type is a
// query or a reply that carries an identifier: echo, and for ICMPv4 also
// timestamp, information and address mask.
func icmpQuery(version, typ uint8) bool {
	if version == 6 {
		return typ == 128 || typ == 129
	}
	switch typ {
	case 0, 8, 13, 14, 15, 16, 17, 18:
		return true
	}
	return false
}

// icmpError says whether an ICMP (version 4) or ICMPv6 (6) type is an
// error that quotes the packet that caused it.
func icmpError(version, typ uint8) bool {
	if version == 6 {
		return typ >= 1 && typ <= 4 // unreachable, too big, time exceeded, parameter problem
	}
	switch typ {
	case 3, 4, 5, 11, 12: // unreachable, source quench, redirect, time exceeded, parameter problem
		return true
	}
	return false
}

// inner4 reads the tuple of the IPv4 packet quoted in an ICMP error.
func inner4(b []byte) (Tuple, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return Tuple{}, false
	}
	hlen := int(b[0]&0x0f) * 4
	if hlen < 20 || hlen > len(b) {
		return Tuple{}, false
	}
	t := Tuple{
		Proto: ipproto.Proto(b[9]),
		Src:   netip.AddrFrom4([4]byte(b[12:16])),
		Dst:   netip.AddrFrom4([4]byte(b[16:20])),
	}
	if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
		// A later fragment was quoted: no transport header to read.
		return innerNoPorts(t, 4)
	}
	return innerPorts(t, 4, b[hlen:])
}

// inner6 reads the tuple of the IPv6 packet quoted in an ICMPv6 error,
// walking its extension headers by hand.
func inner6(b []byte) (Tuple, bool) {
	if len(b) < 40 || b[0]>>4 != 6 {
		return Tuple{}, false
	}
	t := Tuple{
		Src: netip.AddrFrom16([16]byte(b[8:24])),
		Dst: netip.AddrFrom16([16]byte(b[24:40])),
	}
	next, rest := ipproto.Proto(b[6]), b[40:]
	for range maxExtHeaders + 1 {
		switch next {
		case ipproto.HopByHop, ipproto.Routing, ipproto.DestOpts:
			if len(rest) < 2 || len(rest) < int(rest[1])*8+8 {
				return Tuple{}, false
			}
			next, rest = ipproto.Proto(rest[0]), rest[int(rest[1])*8+8:]
		case ipproto.Fragment:
			if len(rest) < 8 {
				return Tuple{}, false
			}
			off := binary.BigEndian.Uint16(rest[2:4]) >> 3
			next, rest = ipproto.Proto(rest[0]), rest[8:]
			if off != 0 {
				t.Proto = next
				return innerNoPorts(t, 6)
			}
		default:
			t.Proto = next
			return innerPorts(t, 6, rest)
		}
	}
	return Tuple{}, false
}

// innerPorts completes a quoted packet's tuple with its ports (tcp, udp)
// or its ICMP identifier (a query of the same IP version), from l4, the
// bytes after its IP headers.
func innerPorts(t Tuple, version uint8, l4 []byte) (Tuple, bool) {
	switch {
	case t.Proto == ipproto.TCP || t.Proto == ipproto.UDP:
		if len(l4) < 4 {
			return Tuple{}, false
		}
		t.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		t.DstPort = binary.BigEndian.Uint16(l4[2:4])
	case version == 4 && t.Proto == ipproto.ICMP, version == 6 && t.Proto == ipproto.ICMPv6:
		if len(l4) < 8 {
			return Tuple{}, false
		}
		if icmpQuery(version, l4[0]) {
			id := binary.BigEndian.Uint16(l4[4:6])
			t.SrcPort, t.DstPort = id, id
		}
	}
	return t, true
}

// innerNoPorts is the tuple of a quoted later fragment: readable unless
// its protocol has ports or an identifier, which the fragment lacks, or
// (IPv6) is an extension header, which hides the protocol.
func innerNoPorts(t Tuple, version uint8) (Tuple, bool) {
	switch {
	case t.Proto == ipproto.TCP || t.Proto == ipproto.UDP,
		version == 4 && t.Proto == ipproto.ICMP, version == 6 && t.Proto == ipproto.ICMPv6,
		version == 6 && next6(layers.IPProtocol(t.Proto)) != gopacket.LayerTypePayload:
		return Tuple{}, false
	}
	return t, true
}
