package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// maxExtHeaders bounds the IPv6 extension headers walked in the packet
// quoted by an ICMPv6 error; a longer quoted chain has no Inner. The
// packet's own chain has no such bound (issue 16): conntrack and the
// receiving stack walk a chain of any length, so an allowed flow must not
// be dropped for the length of its chain. Each header takes at least 8
// bytes, so the walk is bounded by the packet's length, and ip6ExtLayer
// skips a run of headers as one layer, which keeps the decoder's layer
// list at most 5 long (IPv6, a run, a fragment header, a run, transport).
const maxExtHeaders = 16

// errMalformed is what the layers below return, instead of reaching
// gopacket's own error paths (which format a message, and allocate), when
// the lengths and option lists they were handed are inconsistent. The
// Decoder turns any error into Kind Unknown; the text is never shown.
var errMalformed = errors.New("packet: malformed or truncated header")

// Decoder decodes packets into Packet values: an unfragmented IPv4
// TCP or UDP packet by hand (decodeFast), any other with gopacket's
// DecodingLayerParser over layers it allocates once. The zero value is
// ready to use. A Decoder is not safe for concurrent use (use one per
// goroutine) and must not be copied after its first Decode, since its
// parsers point into it.
//
// After Decode, the Decoder's layers still refer to the bytes last
// decoded (until the next Decode); it never reads them again, and the
// Packet it filled refers to nothing.
type Decoder struct {
	_       noCopy
	p4, p6  *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType

	ip4   ip4Layer
	ip6   ip6Layer
	ext   ip6ExtLayer
	frag  ip6FragLayer
	tcp   tcpLayer
	udp   udpLayer
	icmp4 icmp4Layer
	icmp6 icmp6Layer
}

// noCopy makes go vet's copylocks check report a copied Decoder.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

func (d *Decoder) init() {
	d.p4 = newParser(layers.LayerTypeIPv4, &d.ip4, &d.tcp, &d.udp, &d.icmp4)
	d.p6 = newParser(layers.LayerTypeIPv6, &d.ip6, &d.ext, &d.frag, &d.tcp, &d.udp, &d.icmp6)
	// IPv6, the extension headers, a fragment header and a transport.
	d.decoded = make([]gopacket.LayerType, 0, 8)
}

func newParser(first gopacket.LayerType, dls ...gopacket.DecodingLayer) *gopacket.DecodingLayerParser {
	p := gopacket.NewDecodingLayerParser(first)
	// The sparse container is a slice indexed by layer type: the fastest
	// lookup, and the layer types involved are small numbers.
	var c gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
	for _, dl := range dls {
		c = c.Put(dl)
	}
	p.SetDecodingLayerContainer(c)
	// Every layer here names its next layer itself (see next4, next6) and
	// stops with LayerTypePayload where decoding ends; reaching a layer
	// type without a decoder is the normal end, not an error.
	p.IgnoreUnsupported = true
	// Lengths are validated before gopacket reads anything, so a panic
	// would be a bug for the fuzzer to find, not an error to hide (and
	// the deferred recover costs time on every packet).
	p.IgnorePanic = true
	return p
}

// Decode decodes data, which starts at an IPv4 or IPv6 header (the
// version nibble decides), into p. It overwrites all of p. A packet that
// is not IPv4 or IPv6, or whose headers are truncated or inconsistent,
// comes back with Kind Unknown and every other field zero. Decode does
// not keep p, and allocates nothing after the Decoder's first call.
func (d *Decoder) Decode(data []byte, p *Packet) {
	if decodeFast(data, p) {
		return
	}
	d.decodeParser(data, p)
}

// decodeParser is Decode through gopacket's DecodingLayerParser, for
// every packet (decodeFast takes the common ones first).
func (d *Decoder) decodeParser(data []byte, p *Packet) {
	*p = Packet{}
	if len(data) == 0 {
		return
	}
	if d.p4 == nil {
		d.init()
	}
	var parser *gopacket.DecodingLayerParser
	switch data[0] >> 4 {
	case 4:
		parser = d.p4
	case 6:
		parser = d.p6
		d.frag.seen = false
	default:
		return
	}
	if err := parser.DecodeLayers(data, &d.decoded); err != nil || !d.fill(p) {
		*p = Packet{}
	}
}

// fill copies what the parser decoded into p and says whether it makes a
// packet: a transport header we decode must be there unless the packet is
// a later fragment, and an IPv6 extension header chain must be complete.
func (d *Decoder) fill(p *Packet) bool {
	if len(d.decoded) == 0 {
		return false
	}
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			d.fillIPv4(p)
		case layers.LayerTypeIPv6:
			ip := &d.ip6
			p.Version = 6
			p.Src = netip.AddrFrom16([16]byte(ip.SrcIP))
			p.Dst = netip.AddrFrom16([16]byte(ip.DstIP))
			p.Length = 40 + int(ip.Length)
		case layers.LayerTypeIPv6Fragment:
			f := &d.frag
			p.FragID = f.Identification
			switch {
			case f.FragmentOffset != 0:
				p.Frag = LaterFragment
			case f.MoreFragments:
				p.Frag = FirstFragment
			}
		case layers.LayerTypeTCP:
			p.HasTransport = true
			p.SrcPort = uint16(d.tcp.SrcPort)
			p.DstPort = uint16(d.tcp.DstPort)
			p.TCPFlags = d.tcp.Contents[13]
		case layers.LayerTypeUDP:
			p.HasTransport = true
			p.SrcPort = uint16(d.udp.SrcPort)
			p.DstPort = uint16(d.udp.DstPort)
		case layers.LayerTypeICMPv4:
			d.fillICMPv4(p)
		case layers.LayerTypeICMPv6:
			d.fillICMPv6(p)
		}
	}
	p.Proto = d.lastProto()
	if p.Frag != LaterFragment && !p.HasTransport && !p.transportOptional() {
		// The parser stops early on an empty payload: the header that the
		// last one announced is missing.
		return false
	}
	p.Kind = IP
	return true
}

func (d *Decoder) fillIPv4(p *Packet) {
	ip := &d.ip4
	p.Version = 4
	p.Src = netip.AddrFrom4([4]byte(ip.SrcIP))
	p.Dst = netip.AddrFrom4([4]byte(ip.DstIP))
	p.Length = int(ip.Length)
	switch {
	case ip.FragOffset != 0:
		p.Frag = LaterFragment
	case ip.Flags&layers.IPv4MoreFragments != 0:
		p.Frag = FirstFragment
	}
	if p.Frag != NotFragment {
		p.FragID = uint32(ip.Id)
	}
}

func (d *Decoder) fillICMPv4(p *Packet) {
	p.HasTransport = true
	p.ICMPType = d.icmp4.TypeCode.Type()
	p.ICMPCode = d.icmp4.TypeCode.Code()
	switch {
	case icmpQuery(4, p.ICMPType):
		p.ICMPID = d.icmp4.Id
	case icmpError(4, p.ICMPType):
		p.Inner, p.HasInner = inner4(d.icmp4.Payload)
	}
}

func (d *Decoder) fillICMPv6(p *Packet) {
	p.HasTransport = true
	p.ICMPType = d.icmp6.TypeCode.Type()
	p.ICMPCode = d.icmp6.TypeCode.Code()
	// icmp6Layer made sure of the 4 bytes after type, code and checksum:
	// an echo's identifier, an error's MTU or pointer.
	rest := d.icmp6.Payload
	switch {
	case icmpQuery(6, p.ICMPType):
		p.ICMPID = binary.BigEndian.Uint16(rest)
	case icmpError(6, p.ICMPType):
		p.Inner, p.HasInner = inner6(rest[4:])
	}
}

// lastProto is the upper-layer protocol: the next header named by the
// last layer decoded.
func (d *Decoder) lastProto() ipproto.Proto {
	switch d.decoded[len(d.decoded)-1] {
	case layers.LayerTypeIPv4:
		return ipproto.Proto(d.ip4.Protocol)
	case layers.LayerTypeIPv6:
		return ipproto.Proto(d.ip6.NextHeader)
	case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination:
		return ipproto.Proto(d.ext.NextHeader)
	case layers.LayerTypeIPv6Fragment:
		return ipproto.Proto(d.frag.NextHeader)
	case layers.LayerTypeTCP:
		return ipproto.TCP
	case layers.LayerTypeUDP:
		return ipproto.UDP
	case layers.LayerTypeICMPv4:
		return ipproto.ICMP
	case layers.LayerTypeICMPv6:
		return ipproto.ICMPv6
	}
	return 0
}

// transportOptional reports whether the packet's protocol is one whose
// header the Decoder does not decode, so that its absence is no error.
func (p *Packet) transportOptional() bool {
	if p.Version == 4 {
		return next4(layers.IPProtocol(p.Proto)) == gopacket.LayerTypePayload
	}
	return next6(layers.IPProtocol(p.Proto)) == gopacket.LayerTypePayload
}

// next4 is the layer that follows an IPv4 header (or that the first
// fragment of one starts with) carrying proto. Only what the Decoder
// decodes is named: no tunnels, so nothing can overwrite the outer header.
func next4(proto layers.IPProtocol) gopacket.LayerType {
	switch proto {
	case layers.IPProtocolTCP:
		return layers.LayerTypeTCP
	case layers.IPProtocolUDP:
		return layers.LayerTypeUDP
	case layers.IPProtocolICMPv4:
		return layers.LayerTypeICMPv4
	}
	return gopacket.LayerTypePayload
}

// next6 is the layer that follows an IPv6 header or extension header
// announcing proto.
func next6(proto layers.IPProtocol) gopacket.LayerType {
	switch proto {
	case layers.IPProtocolTCP:
		return layers.LayerTypeTCP
	case layers.IPProtocolUDP:
		return layers.LayerTypeUDP
	case layers.IPProtocolICMPv6:
		return layers.LayerTypeICMPv6
	case layers.IPProtocolIPv6HopByHop:
		return layers.LayerTypeIPv6HopByHop
	case layers.IPProtocolIPv6Routing:
		return layers.LayerTypeIPv6Routing
	case layers.IPProtocolIPv6Destination:
		return layers.LayerTypeIPv6Destination
	case layers.IPProtocolIPv6Fragment:
		return layers.LayerTypeIPv6Fragment
	}
	return gopacket.LayerTypePayload
}

// validOptions says whether b is a well-formed IPv4 or TCP option list
// (end of list, no-op, or type-length-value with a length of at least
// minLen that fits), checked the way gopacket's decoders check it so that
// they never fail on it.
func validOptions(b []byte, minLen int) bool {
	for len(b) > 0 {
		switch b[0] {
		case 0: // end of option list; the rest is padding
			return true
		case 1: // no-op
			b = b[1:]
		default:
			if len(b) < 2 {
				return false
			}
			n := int(b[1])
			if n < minLen || n > len(b) {
				return false
			}
			b = b[n:]
		}
	}
	return true
}

// ip4Layer is layers.IPv4, validated first and naming only the layers we
// decode next.
type ip4Layer struct{ layers.IPv4 }

func (l *ip4Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		return errMalformed
	}
	hlen := int(data[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(data[2:4]))
	if total == 0 {
		// TCP segmentation offload leaves it zero; gopacket then takes
		// the length of the data, which must fit the field.
		total = len(data)
	}
	if hlen < 20 || hlen > len(data) || hlen > total || total > 0xffff || !validOptions(data[20:hlen], 3) {
		return errMalformed
	}
	return l.IPv4.DecodeFromBytes(data, df)
}

func (l *ip4Layer) NextLayerType() gopacket.LayerType {
	if l.FragOffset != 0 {
		return gopacket.LayerTypeFragment // a later fragment: no transport header
	}
	return next4(l.Protocol)
}

// ip6Layer is layers.IPv6 for the fixed header; every extension header,
// hop-by-hop included, is left to ip6ExtLayer and ip6FragLayer.
type ip6Layer struct{ layers.IPv6 }

func (l *ip6Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 40 {
		return errMalformed
	}
	plen := binary.BigEndian.Uint16(data[4:6])
	if plen == 0 {
		return errMalformed // a jumbogram, or broken: not decoded
	}
	if ipproto.Proto(data[6]) != ipproto.HopByHop {
		return l.IPv6.DecodeFromBytes(data, df)
	}
	// layers.IPv6 decodes a hop-by-hop header itself and allocates an
	// object for each of its options: a number of allocations per packet
	// that the sender chooses. Decode the fixed header here instead,
	// exactly as layers.IPv6 does when there is no hop-by-hop header, and
	// let ip6ExtLayer skip the hop-by-hop header like any other.
	l.Version = data[0] >> 4
	l.TrafficClass = uint8(binary.BigEndian.Uint16(data[0:2]) >> 4)
	l.FlowLabel = binary.BigEndian.Uint32(data[0:4]) & 0x000fffff
	l.Length = plen
	l.NextHeader = layers.IPProtocol(data[6])
	l.HopLimit = data[7]
	l.SrcIP = data[8:24]
	l.DstIP = data[24:40]
	l.HopByHop = nil
	end := 40 + int(plen)
	if end > len(data) {
		df.SetTruncated()
		end = len(data)
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:40], Payload: data[40:end]}
	return nil
}

func (l *ip6Layer) NextLayerType() gopacket.LayerType { return next6(l.NextHeader) }

// ip6ExtLayer skips a run of hop-by-hop, routing and destination options
// headers (as many as follow one another) as one layer; it stops at the
// first next header that is none of them. (In gopacket v1.1.19
// IPv6Routing has no DecodeFromBytes, and IPv6HopByHop and
// IPv6Destination allocate per option; IPv6Destination also never
// truncates its option list, so it grows with every packet.) A header that
// does not fit in data is malformed: with a copy range that cut the
// packet, it is Unknown and dropped (fail-closed; see nfq.DefaultCopyRange).
type ip6ExtLayer struct {
	layers.IPv6ExtensionSkipper
}

func (l *ip6ExtLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	n := 0
	for {
		if len(data)-n < 2 || len(data)-n < int(data[n+1])*8+8 {
			return errMalformed
		}
		next := ipproto.Proto(data[n])
		n += int(data[n+1])*8 + 8
		switch next {
		case ipproto.HopByHop, ipproto.Routing, ipproto.DestOpts:
			continue
		}
		l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
		l.NextHeader = layers.IPProtocol(next)
		return nil
	}
}

// CanDecode leaves out the fragment header (the skipper's class has it),
// which ip6FragLayer decodes.
func (l *ip6ExtLayer) CanDecode() gopacket.LayerClass {
	return gopacket.NewLayerClass([]gopacket.LayerType{
		layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination,
	})
}

func (l *ip6ExtLayer) NextLayerType() gopacket.LayerType { return next6(l.NextHeader) }

// ip6FragLayer decodes an IPv6 fragment header into layers.IPv6Fragment,
// which has no DecodeFromBytes in gopacket v1.1.19. A packet may carry one.
type ip6FragLayer struct {
	layers.IPv6Fragment
	seen bool // a fragment header was decoded in the current packet; Decode resets it
}

func (l *ip6FragLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 8 || l.seen {
		return errMalformed
	}
	l.seen = true
	l.BaseLayer = layers.BaseLayer{Contents: data[:8], Payload: data[8:]}
	l.NextHeader = layers.IPProtocol(data[0])
	l.Reserved1 = data[1]
	l.FragmentOffset = binary.BigEndian.Uint16(data[2:4]) >> 3
	l.Reserved2 = data[3] & 0x6 >> 1
	l.MoreFragments = data[3]&0x1 != 0
	l.Identification = binary.BigEndian.Uint32(data[4:8])
	return nil
}

func (l *ip6FragLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6Fragment }

func (l *ip6FragLayer) NextLayerType() gopacket.LayerType {
	if l.FragmentOffset != 0 {
		return gopacket.LayerTypeFragment // a later fragment: no transport header
	}
	return next6(l.NextHeader)
}

// tcpLayer is layers.TCP, validated first; decoding ends with it.
type tcpLayer struct{ layers.TCP }

func (l *tcpLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		return errMalformed
	}
	hlen := int(data[12]>>4) * 4
	if hlen < 20 || hlen > len(data) || !validOptions(data[20:hlen], 2) {
		return errMalformed
	}
	return l.TCP.DecodeFromBytes(data, df)
}

func (l *tcpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// udpLayer is layers.UDP, validated first; decoding ends with it.
type udpLayer struct{ layers.UDP }

func (l *udpLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errMalformed
	}
	if n := binary.BigEndian.Uint16(data[4:6]); n != 0 && n < 8 {
		return errMalformed
	}
	return l.UDP.DecodeFromBytes(data, df)
}

func (l *udpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// icmp4Layer is layers.ICMPv4 (8 bytes of header); decoding ends with it.
type icmp4Layer struct{ layers.ICMPv4 }

func (l *icmp4Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errMalformed
	}
	return l.ICMPv4.DecodeFromBytes(data, df)
}

func (l *icmp4Layer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// icmp6Layer is layers.ICMPv6, which decodes 4 bytes; like conntrack it
// requires the 8 of every ICMPv6 message. Decoding ends with it.
type icmp6Layer struct{ layers.ICMPv6 }

func (l *icmp6Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errMalformed
	}
	return l.ICMPv6.DecodeFromBytes(data, df)
}

func (l *icmp6Layer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }
