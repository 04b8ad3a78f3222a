package packettest

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// This file builds packets, starting at the IP header, with
// gopacket.SerializeLayers: lengths and checksums (IPv4 header, TCP, UDP,
// ICMP, ICMPv6 with the IPv6 pseudo-header) are computed. It is for tests
// and tools (pcap writers, replay tests): Build returns an error, the
// other helpers panic on bad input like regexp.MustCompile, since they are
// meant to be called with literals.

// Spec describes a packet for Build. Zero fields take the defaults given.
type Spec struct {
	// Src and Dst are both IPv4 or both IPv6; they decide the IP version.
	Src, Dst netip.Addr
	// Proto is the upper-layer protocol: TCP, UDP,
	// ICMP (IPv4 only), ICMPv6 (IPv6 only), or any other
	// number, whose header is then up to Payload.
	Proto ipproto.Proto
	// SrcPort and DstPort for tcp and udp; TCPFlags (FIN, SYN, ...) and
	// TCPOptions (padded to a multiple of 4 bytes) for tcp, whose
	// sequence number is 1 (acknowledgement 1 with ACK), window 64240.
	SrcPort, DstPort uint16
	TCPFlags         uint8 // packet.SYN, packet.ACK... (the TCP header's flag bits)
	TCPOptions       []layers.TCPOption
	// ICMPType and ICMPCode for icmp and icmpv6. ICMPRest is the 4 bytes
	// after type, code and checksum: identifier<<16 | sequence for an
	// echo, the MTU of "packet too big" (ICMPv4 "fragmentation needed":
	// the low 16 bits), a parameter problem's pointer.
	ICMPType, ICMPCode uint8
	ICMPRest           uint32
	// Payload follows the transport header (for an ICMP error, it is the
	// quoted packet).
	Payload []byte
	// TTL is the IPv4 time to live or IPv6 hop limit; 0 means 64.
	TTL uint8
	// ID is the IPv4 identification.
	ID uint16
	// IPv4Options go into the IPv4 header, padded to a multiple of 4
	// bytes with end-of-list. IPv4 only.
	IPv4Options []layers.IPv4Option
	// Ext are IPv6 extension headers, in order, between the IPv6 header
	// and the transport header. IPv6 only.
	Ext []Ext
}

// Ext is an IPv6 extension header for Spec.Ext.
type Ext struct {
	// Type is ipproto.HopByHop, ipproto.Routing, ipproto.DestOpts or ipproto.Fragment.
	Type ipproto.Proto
	// Len is the length in bytes of a hop-by-hop, routing or destination
	// options header: a multiple of 8 up to 2048; 0 means 8. Hop-by-hop
	// and destination options headers hold padding options only; a
	// routing header is of type 0 with no segments left.
	Len int
	// FragOffset (in 8-byte units), MoreFragments and FragID make a
	// fragment header.
	FragOffset    uint16
	MoreFragments bool
	FragID        uint32
}

// serializeOpts fills in lengths and checksums.
func serializeOpts() gopacket.SerializeOptions {
	return gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
}

// Build serializes the packet that s describes.
func Build(s Spec) ([]byte, error) {
	if !s.Src.IsValid() || !s.Dst.IsValid() || s.Src.Is4() != s.Dst.Is4() {
		return nil, fmt.Errorf("packet: build: addresses %v and %v are not both IPv4 or both IPv6", s.Src, s.Dst)
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = 64
	}
	var ls []gopacket.SerializableLayer
	var network gopacket.NetworkLayer
	if s.Src.Is4() {
		if len(s.Ext) > 0 {
			return nil, fmt.Errorf("packet: build: IPv6 extension headers in an IPv4 packet")
		}
		if s.Proto == ipproto.ICMPv6 {
			return nil, fmt.Errorf("packet: build: icmpv6 in an IPv4 packet")
		}
		ip := &layers.IPv4{
			Version: 4, TTL: ttl, Id: s.ID, Protocol: layers.IPProtocol(s.Proto),
			SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice(), Options: s.IPv4Options,
		}
		ls, network = append(ls, ip), ip
	} else {
		if len(s.IPv4Options) > 0 {
			return nil, fmt.Errorf("packet: build: IPv4 options in an IPv6 packet")
		}
		if s.Proto == ipproto.ICMP {
			return nil, fmt.Errorf("packet: build: icmp in an IPv6 packet (icmpv6 is %d)", ipproto.ICMPv6)
		}
		ip := &layers.IPv6{
			Version: 6, HopLimit: ttl, NextHeader: layers.IPProtocol(s.Proto),
			SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice(),
		}
		ls, network = append(ls, ip), ip
		if len(s.Ext) > 0 {
			ext, err := extBytes(s.Ext, s.Proto)
			if err != nil {
				return nil, err
			}
			ip.NextHeader = layers.IPProtocol(s.Ext[0].Type)
			ls = append(ls, gopacket.Payload(ext))
		}
	}
	payload := s.Payload
	switch s.Proto {
	case ipproto.TCP:
		f := s.TCPFlags
		tcp := &layers.TCP{
			SrcPort: layers.TCPPort(s.SrcPort), DstPort: layers.TCPPort(s.DstPort),
			Seq: 1, Window: 64240, Options: s.TCPOptions,
			FIN: f&0x01 != 0, SYN: f&0x02 != 0, RST: f&0x04 != 0, PSH: f&0x08 != 0,
			ACK: f&0x10 != 0, URG: f&0x20 != 0, ECE: f&0x40 != 0, CWR: f&0x80 != 0,
		}
		if f&0x10 != 0 { // ACK
			tcp.Ack = 1
		}
		if err := tcp.SetNetworkLayerForChecksum(network); err != nil {
			return nil, fmt.Errorf("packet: build: %w", err)
		}
		ls = append(ls, tcp)
	case ipproto.UDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(s.SrcPort), DstPort: layers.UDPPort(s.DstPort)}
		if err := udp.SetNetworkLayerForChecksum(network); err != nil {
			return nil, fmt.Errorf("packet: build: %w", err)
		}
		ls = append(ls, udp)
	case ipproto.ICMP:
		ls = append(ls, &layers.ICMPv4{
			TypeCode: layers.CreateICMPv4TypeCode(s.ICMPType, s.ICMPCode),
			Id:       uint16(s.ICMPRest >> 16), Seq: uint16(s.ICMPRest),
		})
	case ipproto.ICMPv6:
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(s.ICMPType, s.ICMPCode)}
		if err := icmp.SetNetworkLayerForChecksum(network); err != nil {
			return nil, fmt.Errorf("packet: build: %w", err)
		}
		ls = append(ls, icmp)
		// layers.ICMPv6 writes 4 bytes; the next 4 start the body.
		payload = binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(s.Payload)), s.ICMPRest)
		payload = append(payload, s.Payload...)
	}
	if len(payload) > 0 {
		ls = append(ls, gopacket.Payload(payload))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, serializeOpts(), ls...); err != nil {
		return nil, fmt.Errorf("packet: build: %w", err)
	}
	return buf.Bytes(), nil
}

// extBytes lays out IPv6 extension headers, the last one announcing proto.
func extBytes(exts []Ext, proto ipproto.Proto) ([]byte, error) {
	var b []byte
	for i, e := range exts {
		next := proto
		if i+1 < len(exts) {
			next = exts[i+1].Type
		}
		switch e.Type {
		case ipproto.HopByHop, ipproto.Routing, ipproto.DestOpts:
			n := e.Len
			if n == 0 {
				n = 8
			}
			if n%8 != 0 || n > 2048 {
				return nil, fmt.Errorf("packet: build: extension header length %d is not a multiple of 8 up to 2048", n)
			}
			h := make([]byte, n)
			h[0], h[1] = uint8(next), uint8(n/8-1)
			// A routing header stays zero after its length: type 0 with no
			// segments left, which a receiver ignores (RFC 5095).
			if e.Type != ipproto.Routing {
				padOptions(h[2:])
			}
			b = append(b, h...)
		case ipproto.Fragment:
			h := make([]byte, 8)
			h[0] = uint8(next)
			fo := e.FragOffset << 3
			if e.MoreFragments {
				fo |= 1
			}
			binary.BigEndian.PutUint16(h[2:4], fo)
			binary.BigEndian.PutUint32(h[4:8], e.FragID)
			b = append(b, h...)
		default:
			return nil, fmt.Errorf("packet: build: extension header type %d is not one of 0, 43, 44, 60", e.Type)
		}
	}
	return b, nil
}

// padOptions fills an options area with Pad1 or one PadN option.
func padOptions(b []byte) {
	switch len(b) {
	case 0:
	case 1:
		b[0] = 0 // Pad1
	default:
		b[0], b[1] = 1, uint8(len(b)-2) // PadN, zeros follow
	}
}

// MustBuild is Build that panics on an error.
func MustBuild(s Spec) []byte {
	b, err := Build(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TCP builds a TCP segment without payload; src and dst are IPv4 or IPv6
// literals and flags is a combination of FIN, SYN, ... (SYN for a new
// connection, SYN|ACK for its reply).
func TCP(src, dst string, sport, dport uint16, flags uint8) []byte {
	return MustBuild(Spec{
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: ipproto.TCP,
		SrcPort: sport, DstPort: dport, TCPFlags: flags,
	})
}

// UDP builds a UDP datagram; src and dst are IPv4 or IPv6 literals.
func UDP(src, dst string, sport, dport uint16, payload []byte) []byte {
	return MustBuild(Spec{
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: ipproto.UDP,
		SrcPort: sport, DstPort: dport, Payload: payload,
	})
}

// Echo builds an echo request: ICMP type 8 for IPv4 literals, ICMPv6 type
// 128 for IPv6 ones.
func Echo(src, dst string, id, seq uint16) []byte {
	return echo(src, dst, id, seq, 8, 128)
}

// EchoReply builds an echo reply: ICMP type 0 or ICMPv6 type 129.
func EchoReply(src, dst string, id, seq uint16) []byte {
	return echo(src, dst, id, seq, 0, 129)
}

func echo(src, dst string, id, seq uint16, typ4, typ6 uint8) []byte {
	s := Spec{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), ICMPRest: uint32(id)<<16 | uint32(seq)}
	if s.Src.Is4() {
		s.Proto, s.ICMPType = ipproto.ICMP, typ4
	} else {
		s.Proto, s.ICMPType = ipproto.ICMPv6, typ6
	}
	return MustBuild(s)
}

// ICMPError builds an ICMP error (IPv4 literals) or ICMPv6 error (IPv6
// literals) of type typ and code sent from src, typically a router, to
// dst, quoting the packet quoted: up to 548 bytes of it for ICMP (RFC
// 1812's 576-byte limit) and 1232 for ICMPv6 (RFC 4443's 1280). The 4
// bytes after the checksum (an MTU, a pointer) are zero; use Build with
// Spec.ICMPRest to set them. Common errors: ICMP 3 (unreachable, code 3
// port, 4 fragmentation needed), 11 (time exceeded); ICMPv6 1
// (unreachable, code 4 port), 2 (packet too big), 3 (time exceeded).
func ICMPError(src, dst string, typ, code uint8, quoted []byte) []byte {
	s := Spec{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), ICMPType: typ, ICMPCode: code}
	limit := 548
	s.Proto = ipproto.ICMP
	if s.Src.Is6() {
		limit, s.Proto = 1232, ipproto.ICMPv6
	}
	s.Payload = quoted[:min(len(quoted), limit)]
	return MustBuild(s)
}

// Fragments splits an IPv4 or IPv6 packet (not itself a fragment) into
// fragments carrying size bytes of its payload each (rounded down to a
// multiple of 8, at least 8), the last one the rest, with identification
// id (the low 16 bits for IPv4). IPv4 fragments after the first keep only
// the options with the copied bit. An IPv6 fragment header goes after
// the hop-by-hop and routing headers that lead the chain. It panics on
// anything else.
func Fragments(pkt []byte, size int, id uint32) [][]byte {
	size = max(size&^7, 8)
	if len(pkt) > 0 && pkt[0]>>4 == 4 {
		return fragments4(pkt, size, uint16(id))
	}
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		return fragments6(pkt, size, id)
	}
	panic("packet: fragments: not an IPv4 or IPv6 packet")
}

func fragments4(pkt []byte, size int, id uint16) [][]byte {
	var ip layers.IPv4
	if err := ip.DecodeFromBytes(pkt, gopacket.NilDecodeFeedback); err != nil {
		panic(fmt.Errorf("packet: fragments: %w", err))
	}
	if ip.FragOffset != 0 || ip.Flags&layers.IPv4MoreFragments != 0 {
		panic("packet: fragments: already a fragment")
	}
	payload := ip.Payload
	var later []layers.IPv4Option
	for _, o := range ip.Options {
		if o.OptionType&0x80 != 0 { // copied into every fragment
			later = append(later, o)
		}
	}
	var out [][]byte
	for off := 0; off < len(payload) || off == 0; off += size {
		end := min(off+size, len(payload))
		f := ip
		f.Id = id
		f.FragOffset = uint16(off / 8)
		f.Flags = ip.Flags &^ layers.IPv4DontFragment
		if end < len(payload) {
			f.Flags |= layers.IPv4MoreFragments
		}
		if off > 0 {
			f.Options = later
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, serializeOpts(), &f, gopacket.Payload(payload[off:end])); err != nil {
			panic(fmt.Errorf("packet: fragments: %w", err))
		}
		out = append(out, buf.Bytes())
	}
	return out
}

func fragments6(pkt []byte, size int, id uint32) [][]byte {
	var ip layers.IPv6
	if len(pkt) < 40 {
		panic("packet: fragments: short IPv6 packet")
	}
	// Decode the fixed header only (a hop-by-hop header stays payload).
	hdr := make([]byte, 40)
	copy(hdr, pkt)
	hdr[6] = byte(layers.IPProtocolNoNextHeader)
	if err := ip.DecodeFromBytes(hdr, gopacket.NilDecodeFeedback); err != nil {
		panic(fmt.Errorf("packet: fragments: %w", err))
	}
	rest := pkt[40:min(len(pkt), 40+int(binary.BigEndian.Uint16(pkt[4:6])))]
	// The unfragmentable part: leading hop-by-hop and routing headers.
	next, unfrag, prevNext := ipproto.Proto(pkt[6]), 0, -1
	for next == ipproto.HopByHop || next == ipproto.Routing {
		if len(rest)-unfrag < 2 {
			panic("packet: fragments: truncated extension header")
		}
		n := int(rest[unfrag+1])*8 + 8
		prevNext = unfrag
		next = ipproto.Proto(rest[unfrag])
		unfrag += n
		if unfrag > len(rest) {
			panic("packet: fragments: truncated extension header")
		}
	}
	if next == ipproto.Fragment {
		panic("packet: fragments: already a fragment")
	}
	head := append([]byte(nil), rest[:unfrag]...)
	ip.NextHeader = layers.IPProtocolIPv6Fragment
	if prevNext >= 0 {
		ip.NextHeader = layers.IPProtocol(pkt[6])
		head[prevNext] = uint8(ipproto.Fragment)
	}
	payload := rest[unfrag:]
	var out [][]byte
	for off := 0; off < len(payload) || off == 0; off += size {
		end := min(off+size, len(payload))
		b := append([]byte(nil), head...)
		fo := uint16(off/8) << 3
		if end < len(payload) {
			fo |= 1
		}
		b = append(b, uint8(next), 0)
		b = binary.BigEndian.AppendUint16(b, fo)
		b = binary.BigEndian.AppendUint32(b, id)
		b = append(b, payload[off:end]...)
		f := ip
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, serializeOpts(), &f, gopacket.Payload(b)); err != nil {
			panic(fmt.Errorf("packet: fragments: %w", err))
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// LinuxSYNOptions are the options of a Linux SYN: MSS, SACK permitted,
// timestamps, NOP, window scale.
func LinuxSYNOptions() []layers.TCPOption {
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionData: []byte{0x05, 0xb4}},
		{OptionType: layers.TCPOptionKindSACKPermitted},
		{OptionType: layers.TCPOptionKindTimestamps, OptionData: make([]byte, 8)},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{7}},
	}
}
