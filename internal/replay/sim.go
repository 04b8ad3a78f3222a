package replay

import (
	"net/netip"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/kernel"
	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/suggest"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// Matcher answers what a rule table does to a new connection.
// *filter.Table is the implementation; tests may use others.
type Matcher interface {
	Match(k filter.Key) filter.Result
}

// Reason says why a packet got its verdict.
type Reason uint8

const (
	ReasonRule        Reason = iota // accepted by a rule as a new connection
	ReasonEstablished               // part of a tracked flow, either way
	ReasonRelated                   // ICMP error quoting a tracked flow
	ReasonNoMatch                   // a new connection no rule allows
	ReasonMalformed                 // cannot be decoded, or a datagram whose fragments never all arrived
	ReasonNotIP                     // the frame carries no IPv4 or IPv6
	ReasonTransit                   // neither address is a --host address
	ReasonLoopback                  // loopback or host-to-itself traffic: never filtered
	// ReasonNeighbourDiscovery: IPv6 neighbour discovery or MLD, which
	// the kernel rules accept before the queue (kernel.NeighbourDiscovery).
	ReasonNeighbourDiscovery
	ReasonACLAllow // accepted by an ACL entry as a new connection, before the groups
	ReasonACLDeny  // a new connection an ACL entry denies, before the groups
	numReasons
)

var reasonNames = [numReasons]string{"rule", "established", "related", "no-match", "malformed", "not-ip", "transit", "loopback", "neighbour-discovery", "acl-allow", "acl-deny"}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Verdict is the verdict that goes with the reason. Ignored is true when
// the packet is not the host firewall's business (transit traffic with
// --host, frames that carry no IP): the host neither accepts nor drops it,
// and v is Drop.
func (r Reason) Verdict() (v verdict.Verdict, ignored bool) {
	switch r {
	case ReasonRule, ReasonEstablished, ReasonRelated, ReasonLoopback, ReasonNeighbourDiscovery, ReasonACLAllow:
		return verdict.Accept, false
	case ReasonNoMatch, ReasonMalformed, ReasonACLDeny:
		return verdict.Drop, false
	}
	return verdict.Drop, true
}

// Outcome is the reason's verdict in words: "accept", "drop", or "ignore"
// for a packet that is not the firewall's business.
func (r Reason) Outcome() string {
	v, ignored := r.Verdict()
	if ignored {
		return "ignore"
	}
	return v.String()
}

// sim is the emulated host for one rule table: its flow table and its
// counters. The packets come decoded from the Replayer, so that two sims
// (--diff) share one decode.
type sim struct {
	m       Matcher
	hosts   []netip.Addr
	flows   *flowTable
	frag6   *frag6Cache
	reasons [numReasons]uint64
	// drops, when set, counts the new connections the rules drop (no
	// match, ACL deny) for fwctl replay --suggest.
	drops *suggest.Table
}

func newSim(m Matcher, hosts []netip.Addr, maxFlows int) *sim {
	return &sim{m: m, hosts: hosts, flows: newFlowTable(maxFlows), frag6: newFrag6Cache()}
}

func (s *sim) isHost(a netip.Addr) bool {
	for _, h := range s.hosts {
		if h == a {
			return true
		}
	}
	return false
}

// judge decides one decoded IP packet (Kind IP, IPv4 fragments already
// reassembled). k is packetKey(p), srcIsA its orientation. What the
// kernel rules accept before the queue (loopback, neighbour discovery) is
// decided by package kernel's definition, the one `fwctl check` uses.
func (s *sim) judge(p *packet.Packet, k *flowKey, srcIsA bool, ts int64) Reason {
	if kernel.Loopback(p.Src) || kernel.Loopback(p.Dst) {
		return ReasonLoopback
	}
	dir := direction.Ingress
	if len(s.hosts) > 0 {
		src, dst := s.isHost(p.Src), s.isHost(p.Dst)
		switch {
		case src && dst:
			return ReasonLoopback
		case dst:
			dir = direction.Ingress
		case src:
			dir = direction.Egress
		default:
			return ReasonTransit
		}
	}
	if p.Frag == packet.LaterFragment {
		// Only IPv6 gets here: no transport header, so the fragment
		// shares the verdict of its datagram's first fragment.
		return s.frag6.later(p, ts)
	}
	if p.Proto.HasPorts() && !p.HasTransport {
		return ReasonMalformed
	}
	if p.Version == 6 && p.HasTransport && kernel.NeighbourDiscovery(p.Proto, p.ICMPType) {
		return ReasonNeighbourDiscovery // untracked: no flow starts
	}
	s.flows.maybeSweep(ts)
	r := s.decide(p, k, srcIsA, dir, ts)
	if p.Frag == packet.FirstFragment {
		s.frag6.first(p, r, ts)
	}
	return r
}

func (s *sim) decide(p *packet.Packet, k *flowKey, srcIsA bool, dir direction.Dir, ts int64) Reason {
	if f, i := s.flows.get(k, ts); f != nil {
		if f.state == stTCPClosed && p.TCPFlags&(tcpSYN|tcpACK) == tcpSYN {
			// A new connection reusing a closed one's ports.
			s.flows.remove(i)
		} else {
			was := f.state
			f.update(p, srcIsA, ts)
			if f.state != was {
				s.flows.touched(i) // the timeout may be shorter now
			}
			if f.state == stTCPClosed && was != stTCPClosed {
				s.flows.closed++
			}
			return ReasonEstablished
		}
	}
	if p.HasInner {
		ik, _ := makeKey(p.Inner)
		if f, _ := s.flows.get(&ik, ts); f != nil {
			return ReasonRelated
		}
		// An error about nothing tracked is judged as a packet of its own
		// and never starts a flow.
		return newReason(s.m.Match(filter.KeyOf(p, dir)))
	}
	r := newReason(s.m.Match(filter.KeyOf(p, dir)))
	if v, _ := r.Verdict(); v != verdict.Accept {
		if s.drops != nil {
			s.drops.Add(filter.KeyOf(p, dir), time.Unix(0, ts))
		}
		return r
	}
	if p.Proto == ipproto.TCP && p.TCPFlags&tcpRST != 0 {
		return r // a reset ends a connection, it does not open one
	}
	if f, i := s.flows.insert(k, ts); f != nil {
		f.start(p, srcIsA, ts)
		s.flows.touched(i)
	}
	return r
}

// newReason is the reason for a new connection's lookup result: an ACL
// entry's decision, a rule's accept, or no match.
func newReason(v filter.Result) Reason {
	switch {
	case v.ACL != 0 && v.Accepted():
		return ReasonACLAllow
	case v.ACL != 0:
		return ReasonACLDeny
	case v.Accepted():
		return ReasonRule
	}
	return ReasonNoMatch
}

// count adds n packets with reason r.
func (s *sim) count(r Reason, n uint64) { s.reasons[r] += n }

// reset starts a new capture: flows and fragment state do not carry over.
func (s *sim) reset() {
	s.flows.reset()
	s.frag6.reset()
}

// frag6Key names an IPv6 datagram's fragments.
type frag6Key struct {
	src, dst [16]byte
	id       uint32
}

type frag6Entry struct {
	r    Reason
	last int64
}

// frag6Cache remembers the verdict of each IPv6 first fragment so that
// the later fragments of the same datagram (which carry no ports) get the
// same one. IPv6 is not reassembled: a later fragment seen before its
// first fragment is dropped as malformed.
type frag6Cache struct {
	m map[frag6Key]frag6Entry
}

const (
	frag6Max     = 1 << 16
	frag6Timeout = 60 * second // Linux ip6frag_time
)

func newFrag6Cache() *frag6Cache { return &frag6Cache{m: make(map[frag6Key]frag6Entry)} }

func (c *frag6Cache) reset() { clear(c.m) }

func (c *frag6Cache) first(p *packet.Packet, r Reason, ts int64) {
	if len(c.m) >= frag6Max {
		for k, e := range c.m {
			if ts-e.last > frag6Timeout {
				delete(c.m, k)
			}
		}
		if len(c.m) >= frag6Max {
			return
		}
	}
	c.m[frag6Key{p.Src.As16(), p.Dst.As16(), p.FragID}] = frag6Entry{r: r, last: ts}
}

func (c *frag6Cache) later(p *packet.Packet, ts int64) Reason {
	k := frag6Key{p.Src.As16(), p.Dst.As16(), p.FragID}
	e, ok := c.m[k]
	if !ok || ts-e.last > frag6Timeout {
		return ReasonMalformed
	}
	e.last = ts
	c.m[k] = e
	return e.r
}
