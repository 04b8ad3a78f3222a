package packet

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// checkGopacket compares a packet Decode accepted with what gopacket's
// full decoder (gopacket.NewPacket, Default options: not lazy, all layers
// decoded) makes of the same bytes: a second implementation of the header
// layouts, written by others. The reference decoder (ref_test.go) checks
// every field of Packet; this check covers the fields gopacket also knows:
// version, addresses, protocol, fragment state and id, ports, ICMP type
// and code.
//
// It asserts only where both are defined; what it leaves out, and why:
//
//   - Packets Decode refuses (Kind Unknown). gopacket accepts much that
//     fwd must not: a truncated transport header sets its Truncated flag
//     instead of failing, IPv4 and TCP options and UDP lengths are not
//     checked, a chain of more than 16 IPv6 extension headers is walked.
//   - Layers gopacket failed on, and everything after them. Its decoders
//     add a layer before they report an error (decodeIPv6 also adds the
//     hop-by-hop header), so the layer before the DecodeFailure, and the
//     IPv6 header before a failed hop-by-hop one, are not trusted.
//   - The transport header of a fragment: gopacket hands the payload of
//     any IPv4 fragment, and of an IPv6 packet with a fragment header, to
//     a Fragment layer, where Decode reads a first fragment's ports.
//   - What follows an upper-layer header that Decode does not walk: AH is
//     fwd's Proto 51 (tcp behind AH is not tcp to a security group), where
//     gopacket goes on to the header after it; IP-in-IP and the like are
//     decoded by gopacket as a second IP packet.
//   - ICMP identifiers and the packet quoted in an ICMP error: gopacket
//     leaves the quote a payload; the reference decoder covers them.
func checkGopacket(t *testing.T, data []byte, p Packet) {
	t.Helper()
	if p.Kind != IP {
		return
	}
	first := layers.LayerTypeIPv4
	if p.Version == 6 {
		first = layers.LayerTypeIPv6
	}
	gp := gopacket.NewPacket(data, first, gopacket.Default)
	ls := gp.Layers()
	failed := gp.ErrorLayer() != nil
	if failed {
		// Drop the DecodeFailure and the layer it came from.
		ls = ls[:max(len(ls)-2, 0)]
		if n := len(ls); n > 0 && ls[n-1].LayerType() == layers.LayerTypeIPv6 && len(gp.Layers()) > n+1 &&
			gp.Layers()[n].LayerType() == layers.LayerTypeIPv6HopByHop {
			ls = ls[:n-1]
		}
	}
	if len(ls) == 0 {
		return
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("Decode and gopacket disagree on % x\n ours %+v\n gopacket:\n%s\n"+format,
			append([]any{data, p, gp.Dump()}, args...)...)
	}
	addr := func(b []byte) netip.Addr {
		a, _ := netip.AddrFromSlice(b)
		return a
	}
	fragment := false
	switch ip := ls[0].(type) {
	case *layers.IPv4:
		if p.Version != 4 || addr(ip.SrcIP) != p.Src || addr(ip.DstIP) != p.Dst || ipproto.Proto(ip.Protocol) != p.Proto {
			fail("IPv4 header: version 4, %v > %v, protocol %d", ip.SrcIP, ip.DstIP, ip.Protocol)
		}
		fragment = ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0
		want := NotFragment
		switch {
		case ip.FragOffset != 0:
			want = LaterFragment
		case fragment:
			want = FirstFragment
		}
		if p.Frag != want || fragment && p.FragID != uint32(ip.Id) {
			fail("IPv4 fragment: offset %d, more %v, id %d", ip.FragOffset, fragment, ip.Id)
		}
	case *layers.IPv6:
		if p.Version != 6 || addr(ip.SrcIP) != p.Src || addr(ip.DstIP) != p.Dst {
			fail("IPv6 header: version 6, %v > %v", ip.SrcIP, ip.DstIP)
		}
	default:
		fail("gopacket's first layer is %v", ls[0].LayerType())
	}
	// Walk the IPv6 extension headers Decode walks too (gopacket also
	// decodes them after IPv4, as protocols of their own).
	i := 1
	for ; p.Version == 6 && i < len(ls); i++ {
		if f, ok := ls[i].(*layers.IPv6Fragment); ok {
			fragment = true
			want := NotFragment
			switch {
			case f.FragmentOffset != 0:
				want = LaterFragment
			case f.MoreFragments:
				want = FirstFragment
			}
			if p.Frag != want || p.FragID != f.Identification {
				fail("IPv6 fragment header: offset %d, more %v, id %d", f.FragmentOffset, f.MoreFragments, f.Identification)
			}
			if want == LaterFragment && p.Proto != ipproto.Proto(f.NextHeader) {
				fail("IPv6 later fragment of protocol %d", f.NextHeader)
			}
			continue
		}
		if !slices.Contains([]gopacket.LayerType{layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing,
			layers.LayerTypeIPv6Destination}, ls[i].LayerType()) {
			break
		}
	}
	if fragment {
		return
	}
	var next gopacket.Layer
	if i < len(ls) {
		next = ls[i]
	}
	switch l := next.(type) {
	case *layers.TCP:
		if !p.HasTransport || p.Proto != 6 || p.SrcPort != uint16(l.SrcPort) || p.DstPort != uint16(l.DstPort) {
			fail("TCP %d > %d", l.SrcPort, l.DstPort)
		}
	case *layers.UDP:
		if !p.HasTransport || p.Proto != 17 || p.SrcPort != uint16(l.SrcPort) || p.DstPort != uint16(l.DstPort) {
			fail("UDP %d > %d", l.SrcPort, l.DstPort)
		}
	case *layers.ICMPv4:
		if p.Version != 4 {
			return // icmp in IPv6 is no transport to Decode (see Packet)
		}
		if !p.HasTransport || p.Proto != 1 || p.ICMPType != l.TypeCode.Type() || p.ICMPCode != l.TypeCode.Code() {
			fail("ICMPv4 %v", l.TypeCode)
		}
	case *layers.ICMPv6:
		if p.Version != 6 {
			return // nor icmpv6 in IPv4
		}
		if !p.HasTransport || p.Proto != 58 || p.ICMPType != l.TypeCode.Type() || p.ICMPCode != l.TypeCode.Code() {
			fail("ICMPv6 %v", l.TypeCode)
		}
	default:
		// gopacket read no transport header where Decode did: only when
		// it failed before (or on) it.
		if p.HasTransport && !failed {
			fail("gopacket has no transport layer (next layer %v)", layerType(next))
		}
	}
}

func layerType(l gopacket.Layer) gopacket.LayerType {
	if l == nil {
		return gopacket.LayerTypeZero
	}
	return l.LayerType()
}

// TestDecodeMatchesGopacket runs the differential check on every seed
// packet, whole and cut short.
func TestDecodeMatchesGopacket(t *testing.T) {
	var d Decoder
	for name, b := range seedPackets() {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{len(b), len(b) * 2 / 3, 40, 28, 20} {
				n = min(n, len(b))
				var p Packet
				d.Decode(b[:n], &p)
				checkGopacket(t, b[:n], p)
			}
		})
	}
}
