// Package ipproto names IP protocol numbers: the one place fwd spells
// them. It is a leaf of the module's import graph: everything may import
// it and it imports nothing of fwd's.
package ipproto

import (
	"fmt"
	"strconv"
	"strings"
)

// Proto is an IP protocol number (IPv4's protocol field, IPv6's last next
// header).
type Proto uint8

// Protocols with names.
const (
	ICMP   Proto = 1
	TCP    Proto = 6
	UDP    Proto = 17
	ICMPv6 Proto = 58
)

// HasPorts reports whether the protocol carries ports that a rule matches
// (tcp and udp).
func (p Proto) HasPorts() bool { return p == TCP || p == UDP }

// IsICMP reports whether the protocol is icmp or icmpv6, whose messages
// have a type and a code.
func (p Proto) IsICMP() bool { return p == ICMP || p == ICMPv6 }

// String is the protocol's name (tcp, udp, icmp, icmpv6) or its number.
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case ICMP:
		return "icmp"
	case ICMPv6:
		return "icmpv6"
	}
	return strconv.Itoa(int(p))
}

// Parse reads a protocol by name (tcp, udp, icmp, icmpv6 or ipv6-icmp, in
// any case) or by number 0-255.
func Parse(s string) (Proto, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	case "icmp":
		return ICMP, nil
	case "icmpv6", "ipv6-icmp":
		return ICMPv6, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("bad protocol %q: expected tcp, udp, icmp, icmpv6 or a number 0-255", s)
	}
	return Proto(n), nil
}

// IPv6 extension headers that fwd walks to find the upper layer. They
// share the protocol number space (IPv6's next header field).
const (
	HopByHop Proto = 0
	Routing  Proto = 43
	Fragment Proto = 44
	DestOpts Proto = 60
)
