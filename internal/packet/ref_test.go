package packet

import (
	"encoding/binary"
	"net/netip"

	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// refDecode is the reference for Decoder: the same contract written
// straight from the header layouts, in one function, without gopacket.
// Tests and the fuzz target check that the two agree on every field.
func refDecode(b []byte) Packet {
	var p Packet
	if !refFill(b, &p) {
		return Packet{}
	}
	p.Kind = IP
	return p
}

func refFill(b []byte, p *Packet) bool {
	be16 := binary.BigEndian.Uint16
	if len(b) == 0 {
		return false
	}
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return false
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(be16(b[2:4]))
		if total == 0 {
			total = len(b)
		}
		if ihl < 20 || ihl > len(b) || ihl > total || total > 65535 || !refOptions(b[20:ihl], 3) {
			return false
		}
		p.Version, p.Proto, p.Length = 4, ipproto.Proto(b[9]), total
		p.Src = netip.AddrFrom4([4]byte(b[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		flags := be16(b[6:8])
		if flags&0x1fff != 0 {
			p.Frag = LaterFragment
		} else if flags&0x2000 != 0 {
			p.Frag = FirstFragment
		}
		if p.Frag != NotFragment {
			p.FragID = uint32(be16(b[4:6]))
		}
		if p.Frag == LaterFragment {
			return true
		}
		l4 = b[ihl:min(total, len(b))]
	case 6:
		if len(b) < 40 || be16(b[4:6]) == 0 {
			return false
		}
		plen := int(be16(b[4:6]))
		p.Version, p.Length = 6, 40+plen
		p.Src = netip.AddrFrom16([16]byte(b[8:24]))
		p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		next, rest := b[6], b[40:min(len(b), 40+plen)]
		frags := 0
	chain:
		for {
			switch next {
			case 0, 43, 60:
				if len(rest) < 2 {
					return false
				}
				n := (int(rest[1]) + 1) * 8
				if len(rest) < n {
					return false
				}
				next, rest = rest[0], rest[n:]
			case 44:
				frags++
				if frags > 1 || len(rest) < 8 {
					return false
				}
				p.FragID = binary.BigEndian.Uint32(rest[4:8])
				off, more := be16(rest[2:4])>>3, rest[3]&1 == 1
				next, rest = rest[0], rest[8:]
				if off != 0 {
					p.Frag, p.Proto = LaterFragment, ipproto.Proto(next)
					return true
				}
				if more {
					p.Frag = FirstFragment
				}
			default:
				break chain
			}
		}
		p.Proto, l4 = ipproto.Proto(next), rest
	default:
		return false
	}
	switch {
	case p.Proto == 6:
		if len(l4) < 20 {
			return false
		}
		hl := int(l4[12]>>4) * 4
		if hl < 20 || hl > len(l4) || !refOptions(l4[20:hl], 2) {
			return false
		}
		p.SrcPort, p.DstPort, p.TCPFlags = be16(l4[0:2]), be16(l4[2:4]), l4[13]
	case p.Proto == 17:
		if len(l4) < 8 || (be16(l4[4:6]) != 0 && be16(l4[4:6]) < 8) {
			return false
		}
		p.SrcPort, p.DstPort = be16(l4[0:2]), be16(l4[2:4])
	case p.Version == 4 && p.Proto == 1, p.Version == 6 && p.Proto == 58:
		if len(l4) < 8 {
			return false
		}
		p.ICMPType, p.ICMPCode = l4[0], l4[1]
		if refQuery(p.Version, l4[0]) {
			p.ICMPID = be16(l4[4:6])
		}
		if refError(p.Version, l4[0]) {
			p.Inner, p.HasInner = refInner(p.Version, l4[8:])
		}
	default:
		return true
	}
	p.HasTransport = true
	return true
}

func refOptions(b []byte, minLen int) bool {
	for i := 0; i < len(b); {
		switch b[i] {
		case 0:
			return true
		case 1:
			i++
		default:
			if i+1 >= len(b) || int(b[i+1]) < minLen || i+int(b[i+1]) > len(b) {
				return false
			}
			i += int(b[i+1])
		}
	}
	return true
}

func refQuery(v, typ uint8) bool {
	if v == 4 {
		return typ == 0 || typ == 8 || (typ >= 13 && typ <= 18)
	}
	return typ == 128 || typ == 129
}

func refError(v, typ uint8) bool {
	if v == 4 {
		return typ == 3 || typ == 4 || typ == 5 || typ == 11 || typ == 12
	}
	return typ >= 1 && typ <= 4
}

// refInner decodes the start of a packet quoted in an ICMP error of IP
// version v.
func refInner(v uint8, b []byte) (Tuple, bool) {
	be16 := binary.BigEndian.Uint16
	var t Tuple
	var rest []byte
	later := false
	switch v {
	case 4:
		if len(b) < 20 || b[0]>>4 != 4 {
			return Tuple{}, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || ihl > len(b) {
			return Tuple{}, false
		}
		t.Proto = ipproto.Proto(b[9])
		t.Src = netip.AddrFrom4([4]byte(b[12:16]))
		t.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		later = be16(b[6:8])&0x1fff != 0
		rest = b[ihl:]
	case 6:
		if len(b) < 40 || b[0]>>4 != 6 {
			return Tuple{}, false
		}
		t.Src = netip.AddrFrom16([16]byte(b[8:24]))
		t.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		next, headers := b[6], 0
		rest = b[40:]
	chain:
		for {
			switch next {
			case 0, 43, 60, 44:
				headers++
				n := 8
				if next != 44 && len(rest) >= 2 {
					n = (int(rest[1]) + 1) * 8
				}
				if headers > 16 || len(rest) < 2 || len(rest) < n {
					return Tuple{}, false
				}
				if next == 44 && be16(rest[2:4])>>3 != 0 {
					later = true
				}
				next, rest = rest[0], rest[n:]
				if later {
					break chain
				}
			default:
				break chain
			}
		}
		t.Proto = ipproto.Proto(next)
	}
	if later && v == 6 && (t.Proto == 0 || t.Proto == 43 || t.Proto == 44 || t.Proto == 60) {
		return Tuple{}, false // the protocol is behind the extension header, in another fragment
	}
	switch {
	case t.Proto == 6, t.Proto == 17:
		if later || len(rest) < 4 {
			return Tuple{}, false
		}
		t.SrcPort, t.DstPort = be16(rest[0:2]), be16(rest[2:4])
	case v == 4 && t.Proto == 1, v == 6 && t.Proto == 58:
		if later || len(rest) < 8 {
			return Tuple{}, false
		}
		if refQuery(v, rest[0]) {
			t.SrcPort, t.DstPort = be16(rest[4:6]), be16(rest[4:6])
		}
	}
	return t, true
}
