package kernel

import (
	"fmt"
	"net/netip"

	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// Admit names a rule of fwd's chains that accepts a packet before the
// queue, so that fwd never sees it and no security group decides it. It is
// the one definition of what the host passes on its own: Install writes
// these rules, and `fwctl check`, POST /v1/check and `fwctl replay` answer
// from the same predicates (Admits, Loopback, NeighbourDiscovery).
//
// The ctstate RELATED,ESTABLISHED rule is not among them: whether a packet
// belongs to a tracked flow depends on what came before it, which replay
// emulates and a single new-connection query cannot know.
type Admit uint8

const (
	// AdmitNone: no host rule accepts it; conntrack's state or fwd's
	// rules decide.
	AdmitNone Admit = iota
	// AdmitLoopback: "-i lo" (and "-o lo" for egress) accepts it.
	AdmitLoopback
	// AdmitNeighbourDiscovery: an ICMPv6 neighbour discovery or multicast
	// listener discovery message, which conntrack does not track and IPv6
	// cannot work without.
	AdmitNeighbourDiscovery
)

// String is the reason's name in check answers and replay's verdicts:
// "loopback", "neighbour-discovery", "" for AdmitNone.
func (a Admit) String() string {
	switch a {
	case AdmitLoopback:
		return "loopback"
	case AdmitNeighbourDiscovery:
		return "neighbour-discovery"
	}
	return ""
}

// Loopback reports whether a is a loopback address: 127.0.0.0/8 or ::1.
// The kernel rule matches the interface (lo), which a query does not
// have; traffic with a loopback address is only ever on lo (the kernel
// drops it elsewhere as martian), so the address stands for the interface.
// Traffic from the host to one of its own non-loopback addresses also
// goes over lo: replay tells that from its --host addresses, a query
// cannot.
func Loopback(a netip.Addr) bool { return a.IsLoopback() }

// ndHopLimit returns the hop limit the neighbour discovery rules require of
// an ICMPv6 message of type typ, and whether a rule accepts that type at
// all: router and neighbour solicitation and advertisement and redirect
// (133-137) on-link only, hop limit 255; multicast listener query, report
// and done (130-132) and MLDv2 report (143) link-local only, hop limit 1.
func ndHopLimit(typ uint8) (hopLimit uint8, ok bool) {
	switch typ {
	case 133, 134, 135, 136, 137:
		return 255, true
	case 130, 131, 132, 143:
		return 1, true
	}
	return 0, false
}

// ndTypes lists the ICMPv6 types ndHopLimit accepts, in the order of the
// installed rules.
func ndTypes() []uint8 { return []uint8{133, 134, 135, 136, 137, 130, 131, 132, 143} }

// NeighbourDiscovery reports whether the kernel rules accept an ICMPv6
// message of type typ before the queue, given a hop limit that fits it.
// It judges by protocol and type alone: a check query carries no hop
// limit, and replay's decoded packets do not keep it. A message of these
// types with another hop limit is queued to fwd and judged by the rules;
// for neighbour discovery the receiving stack discards such a message
// anyway (RFC 4861 requires hop limit 255).
func NeighbourDiscovery(p ipproto.Proto, typ uint8) bool {
	if p != ipproto.ICMPv6 {
		return false
	}
	_, ok := ndHopLimit(typ)
	return ok
}

// Admits says which rule of fwd's chains accepts, before the queue, a new
// connection with peer address peer, protocol p and (for icmpv6) message
// type typ, in either direction; AdmitNone when none does.
func Admits(peer netip.Addr, p ipproto.Proto, typ uint8) Admit {
	switch {
	case Loopback(peer):
		return AdmitLoopback
	case NeighbourDiscovery(p, typ):
		return AdmitNeighbourDiscovery
	}
	return AdmitNone
}

// ndRuleSpecs are the ip6tables rules that accept neighbour discovery and
// MLD, built from ndHopLimit.
func ndRuleSpecs() []string {
	var out []string
	for _, t := range ndTypes() {
		hl, _ := ndHopLimit(t)
		out = append(out, fmt.Sprintf("-p ipv6-icmp -m icmp6 --icmpv6-type %d -m hl --hl-eq %d -j ACCEPT", t, hl))
	}
	return out
}
