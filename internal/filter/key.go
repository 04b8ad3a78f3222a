package filter

import "net/netip"

// Dir is the direction of a connection relative to the host.
type Dir uint8

const (
	// Ingress is a connection opened by a peer towards the host; the peer
	// is the packet's source and Port is the host's (destination) port.
	Ingress Dir = iota
	// Egress is a connection opened by the host towards a peer; the peer
	// is the packet's destination and Port is the peer's (destination) port.
	Egress
)

func (d Dir) String() string {
	if d == Egress {
		return "out"
	}
	return "in"
}

// Protocol numbers that the table treats specially.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// Key is what a lookup is asked about: the first packet of a connection,
// reduced to what a security group can see. It is a small value; pass it
// by value.
type Key struct {
	Dir   Dir
	Proto uint8      // IP protocol number
	Peer  netip.Addr // source for Ingress, destination for Egress
	// Port is the destination port for tcp and udp. For icmp and icmpv6 it
	// is unused: Type and Code carry the message type and code.
	Port uint16
	Type uint8
	Code uint8
}

// NoRule is the Rule index of an accept by a group's implicit egress
// default (the group omitted egress), and of every drop.
const NoRule = -1

// Verdict is the answer to a lookup. Group and Rule index the rules file
// that the table was compiled from: Group into its groups, Rule into that
// group's ingress or egress list (the first rule of that group that
// matches). When several groups allow, the first group in file order is
// reported. Group and Rule are -1 on a drop.
type Verdict struct {
	Accept bool
	Dir    Dir // the direction asked about: Rule indexes that list
	Group  int32
	Rule   int32
}
