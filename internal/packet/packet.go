// Package packet decodes the IP and transport headers of one packet into a
// value. Decoding never fails: a packet that cannot be decoded comes back
// with Kind Unknown and is the caller's to drop and count.
package packet

import "net/netip"

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

// Frag tells whether a packet is an IP fragment.
type Frag uint8

const (
	NotFragment   Frag = iota
	FirstFragment      // offset 0, more fragments follow: transport header present
	LaterFragment      // offset > 0: no transport header
)

// Packet is one decoded packet. It is a plain value: no pointers into the
// decoded buffer, safe to copy and to keep.
type Packet struct {
	Kind     Kind
	Version  uint8 // 4 or 6
	Proto    uint8 // upper-layer protocol after IPv6 extension headers
	Src, Dst netip.Addr
	Frag     Frag
	FragID   uint32 // IPv4 identification or IPv6 fragment identification
	Length   int    // bytes of the IP packet as given
	// Transport (set when HasTransport is true).
	HasTransport bool
	SrcPort      uint16
	DstPort      uint16
	TCPFlags     uint8 // FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20 ECE=0x40 CWR=0x80
	ICMPType     uint8 // icmp or icmpv6
	ICMPCode     uint8
	// Inner is the start of the packet quoted in an ICMP or ICMPv6 error
	// (destination unreachable, packet too big, time exceeded, parameter
	// problem, source quench, redirect), when it could be read: what
	// conntrack calls RELATED.
	HasInner bool
	Inner    Tuple
}

// Tuple is a connection's 5-tuple as seen in one direction.
type Tuple struct {
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}
