// Package packet decodes the IP and transport headers of one packet into a
// value. Decoding never fails: a packet that cannot be decoded comes back
// with Kind Unknown and is the caller's to drop and count.
//
// A Decoder drives gopacket's DecodingLayerParser over preallocated layers
// (IPv4 with options, IPv6 with its extension header chain, TCP, UDP, ICMPv4,
// ICMPv6); it allocates nothing per packet and keeps no reference to the
// decoded bytes in the Packet it fills. Package packettest builds packets for tests.
package packet

import (
	"net/netip"

	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// Kind says how far a packet could be decoded.
type Kind uint8

const (
	// Unknown: not IPv4/IPv6, truncated or malformed. Nothing else in the
	// Packet is meaningful.
	Unknown Kind = iota
	// IP: the IP header (and extension headers) decoded; Proto is the
	// upper-layer protocol. Transport fields are set when the transport
	// header was present and decoded (see HasTransport).
	IP
)

func (k Kind) String() string {
	if k == IP {
		return "ip"
	}
	return "unknown"
}

// Frag tells whether a packet is an IP fragment.
type Frag uint8

const (
	NotFragment   Frag = iota
	FirstFragment      // offset 0, more fragments follow: transport header present
	LaterFragment      // offset > 0: no transport header
)

func (f Frag) String() string {
	switch f {
	case FirstFragment:
		return "first-fragment"
	case LaterFragment:
		return "later-fragment"
	}
	return "not-fragment"
}

// TCP flags, as found in Packet.TCPFlags.
const (
	FIN uint8 = 0x01
	SYN uint8 = 0x02
	RST uint8 = 0x04
	PSH uint8 = 0x08
	ACK uint8 = 0x10
	URG uint8 = 0x20
	ECE uint8 = 0x40
	CWR uint8 = 0x80
)

// Packet is one decoded packet. It is a plain value: no pointers into the
// decoded buffer, safe to copy and to keep.
//
// What is decodable: with Kind IP, a packet whose Proto is tcp, udp, icmp
// (IPv4) or icmpv6 (IPv6) and that is not a LaterFragment always has
// HasTransport set; a packet of those protocols whose transport header is
// missing, truncated or malformed is Unknown. Other protocols (and icmp in
// IPv6, icmpv6 in IPv4) decode to Kind IP without transport fields.
type Packet struct {
	Kind    Kind
	Version uint8 // 4 or 6
	// Proto is the upper-layer protocol: IPv4's protocol field, or the
	// last next-header value of IPv6's extension header chain (hop-by-hop,
	// routing, destination options and fragment headers are walked; AH,
	// ESP and anything else are the upper layer). For an IPv6
	// LaterFragment it is the fragment header's next header.
	Proto ipproto.Proto
	// Src and Dst are the IP header's addresses: Is4 for IPv4, Is6 for
	// IPv6 (an IPv4-mapped IPv6 address stays IPv6; it is not unmapped).
	Src, Dst netip.Addr
	Frag     Frag
	// FragID is the identification of an IPv4 fragment or of an IPv6
	// fragment header (also of an IPv6 "atomic fragment", offset 0 and no
	// more fragments, which is NotFragment); zero otherwise.
	FragID uint32
	// Length is the IP packet's length according to its header (IPv4
	// total length, IPv6 40 + payload length). It exceeds len(data) when
	// the capture was cut short, as with an NFQUEUE copy range.
	Length int
	// Transport (set when HasTransport is true).
	HasTransport bool
	SrcPort      uint16
	DstPort      uint16
	TCPFlags     uint8 // FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20 ECE=0x40 CWR=0x80
	ICMPType     uint8 // icmp or icmpv6
	ICMPCode     uint8
	// ICMPID is the identifier of an ICMP query or its reply (echo,
	// timestamp, information, address mask; ICMPv6 echo); zero otherwise.
	ICMPID uint16
	// Inner is the start of the packet quoted in an ICMP or ICMPv6 error
	// (destination unreachable, packet too big, time exceeded, parameter
	// problem, source quench, redirect), when it could be read: what
	// conntrack calls RELATED. HasInner is set only when the quoted IP
	// header (and IPv6 extension headers) is complete, of the outer
	// packet's IP version, and its tuple is known: the ports of tcp and
	// udp (first 4 bytes) or the identifier of an icmp query (first 8
	// bytes) are quoted too. A quoted later fragment of those protocols,
	// or an IPv6 one whose next header is an extension header, has none.
	HasInner bool
	Inner    Tuple
}

// Tuple is a connection's 5-tuple as seen in one direction. For icmp and
// icmpv6 queries and replies (echo and the like) both ports hold the ICMP
// identifier, so a request's Reverse equals its reply's Tuple. Ports are
// zero for other protocols.
type Tuple struct {
	Proto            ipproto.Proto
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// Reverse returns the tuple of the other direction of the connection.
func (t Tuple) Reverse() Tuple {
	return Tuple{Proto: t.Proto, Src: t.Dst, Dst: t.Src, SrcPort: t.DstPort, DstPort: t.SrcPort}
}

// Tuple returns the packet's tuple in its own direction. A LaterFragment
// has no ports.
func (p *Packet) Tuple() Tuple {
	t := Tuple{Proto: p.Proto, Src: p.Src, Dst: p.Dst}
	if !p.HasTransport {
		return t
	}
	switch p.Proto {
	case ipproto.TCP, ipproto.UDP:
		t.SrcPort, t.DstPort = p.SrcPort, p.DstPort
	case ipproto.ICMP, ipproto.ICMPv6:
		t.SrcPort, t.DstPort = p.ICMPID, p.ICMPID
	}
	return t
}
