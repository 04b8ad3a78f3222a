package filter

import (
	"net/netip"

	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// Key is what a lookup is asked about: the first packet of a connection,
// reduced to what a security group can see. It is a small value; pass it
// by value.
type Key struct {
	// Dir is Ingress for a connection a peer opens to the host (the peer
	// is the source and Port the host's port), Egress for one the host
	// opens (the peer is the destination and Port the peer's port).
	Dir   direction.Dir
	Proto ipproto.Proto
	Peer  netip.Addr // source for Ingress, destination for Egress
	// Port is the destination port for tcp and udp. For icmp and icmpv6 it
	// is unused: Type and Code carry the message type and code.
	Port uint16
	Type uint8
	Code uint8
	// Ifindex is the interface the packet came in on (Ingress) or leaves
	// by (Egress), 0 when unknown. It matters only to a table some of
	// whose groups name interfaces (see Table.Bind); KeyOf leaves it 0.
	Ifindex uint32
}

// KeyOf returns the lookup key for p as the first packet of a connection
// in direction d: the peer is the source for Ingress and the destination
// for Egress; Port is the destination port for tcp and udp in both
// directions (the destination port names the service); Type and Code are
// set for icmp and icmpv6. A later fragment has Port 0. It allocates
// nothing.
func KeyOf(p *packet.Packet, d direction.Dir) Key {
	k := Key{Dir: d, Proto: p.Proto, Peer: p.Src}
	if d == direction.Egress {
		k.Peer = p.Dst
	}
	switch p.Proto {
	case ipproto.TCP, ipproto.UDP:
		k.Port = p.DstPort
	case ipproto.ICMP, ipproto.ICMPv6:
		k.Type, k.Code = p.ICMPType, p.ICMPCode
	}
	return k
}

// NoRule is the Rule index of an accept by a group's implicit egress
// default (the group omitted egress), and of every drop.
const NoRule = -1

// Result is the answer to a lookup. Group and Rule index the rules file
// that the table was compiled from: Group into its groups, Rule into that
// group's ingress or egress list (the first rule of that group that
// matches). When several groups allow, the first group in file order is
// reported. Group and Rule are -1 on a drop, and when an ACL entry
// decided.
type Result struct {
	Verdict verdict.Verdict
	Dir     direction.Dir // the direction asked about: Rule indexes that list
	Group   int32
	Rule    int32
	// ACL is the number of the ACL entry of direction Dir that decided
	// (rules.ACLEntry.Number, 1-32766), its action giving the verdict;
	// 0 when no entry matched and the groups decided. (0 is no entry's
	// number, so a Result made without it names no entry.)
	ACL int32
}

// Accepted reports whether the verdict is accept.
func (r Result) Accepted() bool { return r.Verdict == verdict.Accept }
