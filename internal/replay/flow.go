package replay

import (
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/packet"
)

// Idle timeouts, in capture time. The three that AWS documents and lets a
// user configure per network interface use AWS's defaults; the others
// (which AWS does not publish) use Linux conntrack's, since the kernel's
// conntrack is what tracks flows under fwd.
const (
	second = int64(1e9)

	TimeoutTCPEstablished = 432000 * second // AWS tcpEstablishedTimeout default (5 days)
	TimeoutUDPStream      = 180 * second    // AWS udpStreamTimeout default: more than one request-response
	TimeoutUDP            = 30 * second     // AWS udpTimeout default: one way or one request-response
	TimeoutTCPSynSent     = 120 * second    // Linux nf_conntrack_tcp_timeout_syn_sent: no reply seen yet
	TimeoutTCPHalfClosed  = 120 * second    // Linux fin_wait: FIN seen in one direction
	TimeoutTCPClosed      = 10 * second     // linger after FIN both ways or RST (Linux close)
	TimeoutICMP           = 30 * second     // Linux nf_conntrack_icmp_timeout
	TimeoutOther          = 600 * second    // Linux nf_conntrack_generic_timeout

	// TimeoutFragment is how long held IPv4 fragments wait for the rest
	// of their datagram (Linux ipfrag_time).
	TimeoutFragment = 30 * second
)

// DefaultMaxFlows is the flow table's default bound.
const DefaultMaxFlows = 1_000_000

// TCP flags as packet.Packet carries them.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// flowKey is a connection's 5-tuple in canonical order (the lower
// address/port pair first), so that both directions find the same entry.
// It has no padding, so the map hashes it as plain memory.
type flowKey struct {
	a, b   [16]byte
	ap, bp uint16
	proto  uint8
	pad    uint8 // always zero
}

// hasPorts reports whether the protocol's flows are told apart by ports.
func hasPorts(proto uint8) bool { return proto == filter.ProtoTCP || proto == filter.ProtoUDP }

// makeKey builds the canonical key of a tuple and tells whether its
// source is side a. Ports are as packet.Tuple has them: tcp and udp
// ports, the identifier twice for ICMP queries, zero otherwise.
func makeKey(t packet.Tuple) (flowKey, bool) {
	k := flowKey{proto: t.Proto}
	s, d := t.Src.As16(), t.Dst.As16()
	sport, dport := t.SrcPort, t.DstPort
	if less(s, sport, d, dport) {
		k.a, k.ap, k.b, k.bp = s, sport, d, dport
		return k, true
	}
	k.a, k.ap, k.b, k.bp = d, dport, s, sport
	return k, false
}

func less(x [16]byte, xp uint16, y [16]byte, yp uint16) bool {
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return xp <= yp
}

// packetKey is the flow key of a decoded packet.
func packetKey(p *packet.Packet) (flowKey, bool) { return makeKey(p.Tuple()) }

type flowState uint8

const (
	stTCPSynSent flowState = iota + 1
	stTCPEstablished
	stTCPHalfClosed
	stTCPClosed
	stUDP
	stUDPStream
	stICMP
	stOther
)

func (s flowState) timeout() int64 {
	switch s {
	case stTCPSynSent:
		return TimeoutTCPSynSent
	case stTCPEstablished:
		return TimeoutTCPEstablished
	case stTCPHalfClosed:
		return TimeoutTCPHalfClosed
	case stTCPClosed:
		return TimeoutTCPClosed
	case stUDP:
		return TimeoutUDP
	case stUDPStream:
		return TimeoutUDPStream
	case stICMP:
		return TimeoutICMP
	}
	return TimeoutOther
}

// flow is one tracked connection.
type flow struct {
	first, last  int64 // capture time, ns
	state        flowState
	origA        bool // the first packet came from side a of the key
	finA, finB   bool
	lastFromOrig bool
	replies      uint8 // UDP: replies that followed a request, saturating
}

// start sets up a flow from its accepted first packet.
func (f *flow) start(p *packet.Packet, srcIsA bool, ts int64) {
	*f = flow{first: ts, last: ts, origA: srcIsA, lastFromOrig: true}
	switch p.Proto {
	case filter.ProtoTCP:
		f.state = stTCPEstablished // a mid-stream pickup, as conntrack does
		if p.TCPFlags&(tcpSYN|tcpACK) == tcpSYN {
			f.state = stTCPSynSent
		}
		f.fin(p.TCPFlags, srcIsA)
	case filter.ProtoUDP:
		f.state = stUDP
	case filter.ProtoICMP, filter.ProtoICMPv6:
		f.state = stICMP
	default:
		f.state = stOther
	}
}

// update advances the flow with one of its later packets.
func (f *flow) update(p *packet.Packet, srcIsA bool, ts int64) {
	f.last = ts
	fromOrig := srcIsA == f.origA
	switch f.state {
	case stTCPSynSent, stTCPEstablished, stTCPHalfClosed:
		if f.state == stTCPSynSent && !fromOrig {
			f.state = stTCPEstablished
		}
		f.fin(p.TCPFlags, srcIsA)
	case stUDP, stUDPStream:
		if !fromOrig && f.lastFromOrig && f.replies < 255 {
			f.replies++
		}
		if f.replies >= 2 {
			f.state = stUDPStream
		}
	}
	f.lastFromOrig = fromOrig
}

func (f *flow) fin(flags uint8, srcIsA bool) {
	if flags&tcpRST != 0 {
		f.state = stTCPClosed
		return
	}
	if flags&tcpFIN == 0 {
		return
	}
	if srcIsA {
		f.finA = true
	} else {
		f.finB = true
	}
	if f.finA && f.finB {
		f.state = stTCPClosed
	} else {
		f.state = stTCPHalfClosed
	}
}

func (f *flow) expired(ts int64) bool { return ts-f.last > f.state.timeout() }

// flowTable is a bounded map of live flows. Entries live in a slab indexed
// by the map so that a lookup is one hash and an update writes no map
// entry; a full table refuses new flows (counted) rather than evicting.
// Not safe for concurrent use.
type flowTable struct {
	idx       map[flowKey]int32
	slab      []flow
	free      []int32
	max       int
	nextSweep int64 // capture time of the next periodic sweep
	fullSweep int64 // capture time before which a full table is not swept again

	started, expired, closed, overflow uint64
}

// sweepEvery is how often, in capture time, expired flows are reclaimed.
const sweepEvery = 60 * second

func newFlowTable(max int) *flowTable {
	if max <= 0 {
		max = DefaultMaxFlows
	}
	hint := min(max, 1<<16)
	return &flowTable{
		idx:  make(map[flowKey]int32, hint),
		slab: make([]flow, 0, hint),
		max:  max,
	}
}

// reset forgets every flow (a new capture starts) but keeps the memory.
func (t *flowTable) reset() {
	clear(t.idx)
	t.slab = t.slab[:0]
	t.free = t.free[:0]
	t.nextSweep, t.fullSweep = 0, 0
}

// get returns the live flow for k, dropping it if it has timed out.
func (t *flowTable) get(k flowKey, ts int64) *flow {
	i, ok := t.idx[k]
	if !ok {
		return nil
	}
	f := &t.slab[i]
	if f.expired(ts) {
		t.remove(k, i)
		return nil
	}
	return f
}

func (t *flowTable) remove(k flowKey, i int32) {
	if t.slab[i].state != stTCPClosed { // closed ones were counted when they closed
		t.expired++
	}
	delete(t.idx, k)
	t.free = append(t.free, i)
}

// insert adds a flow for k, or counts an overflow and returns nil when the
// table is full even after reclaiming expired flows.
func (t *flowTable) insert(k flowKey, ts int64) *flow {
	if len(t.idx) >= t.max {
		if ts >= t.fullSweep {
			t.sweep(ts)
			t.fullSweep = ts + second
		}
		if len(t.idx) >= t.max {
			t.overflow++
			return nil
		}
	}
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		t.slab = append(t.slab, flow{})
		i = int32(len(t.slab) - 1)
	}
	t.idx[k] = i
	t.started++
	return &t.slab[i]
}

// maybeSweep reclaims expired flows once per sweepEvery of capture time.
func (t *flowTable) maybeSweep(ts int64) {
	if ts < t.nextSweep {
		return
	}
	if t.nextSweep != 0 {
		t.sweep(ts)
	}
	t.nextSweep = ts + sweepEvery
}

func (t *flowTable) sweep(ts int64) {
	for k, i := range t.idx {
		if t.slab[i].expired(ts) {
			t.remove(k, i)
		}
	}
}
