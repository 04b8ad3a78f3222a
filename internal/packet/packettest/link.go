package packettest

import "encoding/binary"

// This file wraps IP packets (from Build and its helpers) in the link
// layers a capture file may hold: Ethernet with VLAN tags, Linux cooked
// captures v1 and v2, BSD loopback. The addresses are fixed: frames go
// from 02:00:00:00:00:02 to 02:00:00:00:00:01.

// EtherTypes for the wrappers' tags and protocol fields.
const (
	EtherTypeIPv4   = 0x0800
	EtherTypeARP    = 0x0806
	EtherTypeIPv6   = 0x86DD
	EtherType8021Q  = 0x8100 // an 802.1Q VLAN tag
	EtherType8021AD = 0x88A8 // an 802.1ad (QinQ) service tag
)

// EtherTypeOf returns the EtherType of an IP packet: IPv6 when its version
// nibble says 6, IPv4 otherwise.
func EtherTypeOf(ip []byte) uint16 {
	if len(ip) > 0 && ip[0]>>4 == 6 {
		return EtherTypeIPv6
	}
	return EtherTypeIPv4
}

// Ethernet wraps an IP packet in an Ethernet II frame, with one VLAN tag
// (VLAN 100) for each TPID in tags, outermost first: Ethernet(p,
// EtherType8021AD, EtherType8021Q) is QinQ.
func Ethernet(ip []byte, tags ...uint16) []byte {
	b := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
	for _, tpid := range tags {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, 100)
	}
	b = binary.BigEndian.AppendUint16(b, EtherTypeOf(ip))
	return append(b, ip...)
}

// ARP returns a broadcast Ethernet frame holding an all-zero ARP message:
// a frame without IP.
func ARP() []byte {
	b := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06}
	return append(b, make([]byte, 28)...)
}

// SLL wraps payload in a Linux cooked capture (v1) header, as received by
// the host, whose protocol field is proto (an EtherType).
func SLL(proto uint16, payload []byte) []byte {
	b := []byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0}
	b = binary.BigEndian.AppendUint16(b, proto)
	return append(b, payload...)
}

// SLL2 wraps payload in a Linux cooked capture v2 header, interface index
// 2, as received by the host, whose protocol field is proto (an EtherType).
func SLL2(proto uint16, payload []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, proto)
	b = append(b, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0)
	return append(b, payload...)
}

// Null wraps payload in a BSD loopback header: the address family af as 4
// bytes in order (host order for DLT_NULL, network order for DLT_LOOP).
func Null(af uint32, order binary.AppendByteOrder, payload []byte) []byte {
	b := order.AppendUint32(nil, af)
	return append(b, payload...)
}
