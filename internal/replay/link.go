package replay

import (
	"encoding/binary"
	"strconv"
)

// LinkType is a capture's link-layer header type as pcap and pcapng
// number it (the LINKTYPE_ values of tcpdump.org, not the DLT_ values).
type LinkType uint32

// The link types replay reads. Anything else is counted as not-ip.
const (
	LinkNull     LinkType = 0   // BSD loopback: 4-byte address family, host byte order
	LinkEthernet LinkType = 1   // Ethernet II, with 802.1Q / 802.1ad / QinQ tags
	LinkRawDLT12 LinkType = 12  // raw IP, as some BSDs write DLT_RAW
	LinkRawDLT14 LinkType = 14  // raw IP, as OpenBSD writes DLT_RAW
	LinkRaw      LinkType = 101 // raw IPv4 or IPv6, version from the first nibble
	LinkLoop     LinkType = 108 // OpenBSD loopback: 4-byte address family, network byte order
	LinkSLL      LinkType = 113 // Linux cooked capture v1
	LinkIPv4     LinkType = 228 // raw IPv4
	LinkIPv6     LinkType = 229 // raw IPv6
	LinkSLL2     LinkType = 276 // Linux cooked capture v2
)

// String names the link type the way tcpdump does, or by number.
func (l LinkType) String() string {
	switch l {
	case LinkNull:
		return "null"
	case LinkEthernet:
		return "ethernet"
	case LinkRaw, LinkRawDLT12, LinkRawDLT14:
		return "raw"
	case LinkLoop:
		return "loop"
	case LinkSLL:
		return "linux-sll"
	case LinkIPv4:
		return "ipv4"
	case LinkIPv6:
		return "ipv6"
	case LinkSLL2:
		return "linux-sll2"
	}
	return "linktype-" + strconv.FormatUint(uint64(l), 10)
}

// Supported reports whether replay can find the IP header behind this
// link type.
func (l LinkType) Supported() bool {
	switch l {
	case LinkNull, LinkEthernet, LinkRawDLT12, LinkRawDLT14, LinkRaw,
		LinkLoop, LinkSLL, LinkIPv4, LinkIPv6, LinkSLL2:
		return true
	}
	return false
}

// EtherTypes that carry IP, and the tags in front of them.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86DD
	ether8021Q  = 0x8100
	ether8021AD = 0x88A8
	ether9100   = 0x9100 // pre-standard QinQ outer tag
	maxVLANTags = 8      // more is not a real frame
)

// Address families that BSD loopback headers use for IPv6 (they differ by
// OS); IPv4 is 2 everywhere.
func afIP(af uint32) bool {
	switch af {
	case 2, // AF_INET
		10, // AF_INET6 Linux
		24, // AF_INET6 NetBSD, OpenBSD, BSD/OS
		28, // AF_INET6 FreeBSD, DragonFly
		30: // AF_INET6 Darwin
		return true
	}
	return false
}

// StripLink returns the IP packet inside one captured frame, and false when
// the frame does not carry IPv4 or IPv6 (ARP, LLDP, an unsupported link
// type, a frame too short for its own link header). It only slices data,
// never copies or allocates; the IP header itself is not checked here.
func StripLink(lt LinkType, data []byte) ([]byte, bool) {
	switch lt {
	case LinkEthernet:
		if len(data) < 14 {
			return nil, false
		}
		et := binary.BigEndian.Uint16(data[12:14])
		off := 14
		for i := 0; i < maxVLANTags && (et == ether8021Q || et == ether8021AD || et == ether9100); i++ {
			if len(data) < off+4 {
				return nil, false
			}
			et = binary.BigEndian.Uint16(data[off+2 : off+4])
			off += 4
		}
		if et != etherIPv4 && et != etherIPv6 {
			return nil, false
		}
		return data[off:], true
	case LinkRaw, LinkRawDLT12, LinkRawDLT14:
		if len(data) < 1 {
			return nil, false
		}
		if v := data[0] >> 4; v != 4 && v != 6 {
			return nil, false
		}
		return data, true
	case LinkIPv4, LinkIPv6:
		return data, true
	case LinkSLL:
		// packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)
		if len(data) < 16 {
			return nil, false
		}
		if p := binary.BigEndian.Uint16(data[14:16]); p != etherIPv4 && p != etherIPv6 {
			return nil, false
		}
		return data[16:], true
	case LinkSLL2:
		// protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) addr len(1) addr(8)
		if len(data) < 20 {
			return nil, false
		}
		if p := binary.BigEndian.Uint16(data[0:2]); p != etherIPv4 && p != etherIPv6 {
			return nil, false
		}
		return data[20:], true
	case LinkNull, LinkLoop:
		// The family is in the writer's byte order for Null and big-endian
		// for Loop, but captures get this wrong often enough that both
		// orders are accepted for both: every family value is < 256.
		if len(data) < 4 {
			return nil, false
		}
		af := binary.LittleEndian.Uint32(data[0:4])
		if af > 0xFFFF {
			af = binary.BigEndian.Uint32(data[0:4])
		}
		if !afIP(af) {
			return nil, false
		}
		return data[4:], true
	}
	return nil, false
}
