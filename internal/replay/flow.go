package replay

import (
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"

	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/types/ipproto"
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

// flowKey is a connection's 5-tuple in canonical order (side a is the
// lower address/port pair in a fixed total order), so that both
// directions find the same entry. Addresses are held as the two 64-bit
// words of their 16-byte form (IPv4 as IPv4-mapped). It has no padding,
// so a Go map hashes it as plain memory.
type flowKey struct {
	a0, a1, b0, b1 uint64
	ports          uint32 // a's port << 16 | b's port
	proto          uint32
}

// makeKey builds the canonical key of a tuple and tells whether its
// source is side a. Ports are as packet.Tuple has them: tcp and udp
// ports, the identifier twice for ICMP queries, zero otherwise.
func makeKey(t packet.Tuple) (flowKey, bool) {
	var k flowKey
	srcIsA := k.set(t.Proto, t.Src, t.Dst, t.SrcPort, t.DstPort)
	return k, srcIsA
}

// packetKey is the flow key of a decoded packet: makeKey(p.Tuple()).
func packetKey(p *packet.Packet) (flowKey, bool) {
	var k flowKey
	srcIsA := k.setPacket(p)
	return k, srcIsA
}

// setPacket sets k to packetKey(p) in place and returns its srcIsA. It
// runs for every packet, so it reads the packet's fields without a Tuple
// in between (TestPacketKey holds it to makeKey(p.Tuple())), and writes
// the key where it is used: a key returned by value is copied with
// 16-byte moves that stall on store forwarding.
func (k *flowKey) setPacket(p *packet.Packet) bool {
	var sp, dp uint16
	if p.HasTransport {
		switch p.Proto {
		case ipproto.TCP, ipproto.UDP:
			sp, dp = p.SrcPort, p.DstPort
		case ipproto.ICMP, ipproto.ICMPv6:
			sp, dp = p.ICMPID, p.ICMPID
		}
	}
	return k.set(p.Proto, p.Src, p.Dst, sp, dp)
}

// set sets k to the canonical key of a tuple and returns whether its
// source is side a.
func (k *flowKey) set(proto ipproto.Proto, src, dst netip.Addr, sport, dport uint16) bool {
	s0, s1 := addrWords(src)
	d0, d1 := addrWords(dst)
	k.proto = uint32(proto)
	if s0 < d0 || s0 == d0 && (s1 < d1 || s1 == d1 && sport <= dport) {
		k.a0, k.a1, k.b0, k.b1 = s0, s1, d0, d1
		k.ports = uint32(sport)<<16 | uint32(dport)
		return true
	}
	k.a0, k.a1, k.b0, k.b1 = d0, d1, s0, s1
	k.ports = uint32(dport)<<16 | uint32(sport)
	return false
}

// eq is k == *o, field by field (the compiler's memequal reads 16 bytes
// at a time, which stalls on a key just written).
func (k *flowKey) eq(o *flowKey) bool {
	return k.a0 == o.a0 && k.a1 == o.a1 && k.b0 == o.b0 && k.b1 == o.b1 && k.ports == o.ports && k.proto == o.proto
}

// addrWords is the address's 16-byte form (IPv4 as IPv4-mapped) as two
// little-endian words. IPv4 takes a path of its own: the compiler copies
// As16's array with a 16-byte move that stalls on store forwarding
// (about a tenth of a replay's time), As4's 4 bytes do not.
func addrWords(a netip.Addr) (uint64, uint64) {
	if a.Is4() {
		b := a.As4()
		return 0, 0xffff<<16 | uint64(binary.LittleEndian.Uint32(b[:]))<<32
	}
	b := a.As16()
	return binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
}

// Odd constants for hash (wyhash's).
const (
	hashM1 = 0xa0761d6478bd642f
	hashM2 = 0xe7037ed1a0b428db
	hashM3 = 0x8ebc6af09c88c6e3
)

// mix is wyhash's multiply-fold.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash is a seeded hash of the key. The seed is random per table, so a
// capture cannot be crafted to collide.
func (k *flowKey) hash(seed uint64) uint64 {
	h := mix(k.a0^seed, k.a1^hashM1)
	h = mix(h^k.b0, k.b1^hashM2)
	return mix(h^(uint64(k.ports)<<32|uint64(k.proto)), seed^hashM3)
}

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
	last         int64 // capture time of the latest packet, ns
	state        flowState
	origA        bool // the first packet came from side a of the key
	finA, finB   bool
	lastFromOrig bool
	replies      uint8 // UDP: replies that followed a request, saturating
}

// start sets up a flow from its accepted first packet.
func (f *flow) start(p *packet.Packet, srcIsA bool, ts int64) {
	*f = flow{last: ts, origA: srcIsA, lastFromOrig: true}
	switch p.Proto {
	case ipproto.TCP:
		f.state = stTCPEstablished // a mid-stream pickup, as conntrack does
		if p.TCPFlags&(tcpSYN|tcpACK) == tcpSYN {
			f.state = stTCPSynSent
		}
		f.fin(p.TCPFlags, srcIsA)
	case ipproto.UDP:
		f.state = stUDP
	case ipproto.ICMP, ipproto.ICMPv6:
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

// flowTable is a bounded hash table of live flows: open addressing with
// linear probing over a power-of-two array of slots (one cache line
// each), deletion by backward shift (no tombstones), at most 3/4 full.
// It grows by doubling as flows arrive, up to what max flows need, and
// keeps its memory from one capture to the next; emptying it is O(1)
// (a generation number marks the slots in use). A full table refuses new
// flows (counted) rather than evicting. Not safe for concurrent use.
type flowTable struct {
	slots []flowSlot
	// due[i] is at most the capture time after which slot i's flow has
	// timed out (see touched): MaxInt64 for a slot found empty, MinInt64
	// for a flow not yet touched. A sweep reads this array, 8 bytes a
	// slot, and looks at the slots only of the flows it names as due. A
	// packet that keeps its flow's state only moves the flow's time out
	// later, so due stays a lower bound without a write per packet; the
	// sweep sets it again when it finds the flow alive.
	due       []int64
	n         int    // flows in the table
	gen       uint32 // a slot is in use when its gen is this
	seed      uint64
	max       int
	nextSweep int64 // capture time of the next periodic sweep
	// earliest is at most the capture time at which the first flow in
	// the table can expire (see touched): a sweep before it would find
	// nothing, and is skipped.
	earliest  int64
	fullSweep int64 // capture time before which a full table is not swept again

	started, expired, closed, overflow uint64
}

// flowSlot is one slot of the table: 64 bytes.
type flowSlot struct {
	key  flowKey
	gen  uint32
	hash uint32 // low bits of key.hash: the home slot, without rehashing
	flow
}

// Initial and smallest table sizes, in slots.
const (
	flowSlotsInitial = 1 << 12
	flowSlotsMin     = 8
)

// sweepEvery is how often, in capture time, expired flows are reclaimed.
const sweepEvery = 60 * second

func newFlowTable(max int) *flowTable {
	if max <= 0 {
		max = DefaultMaxFlows
	}
	n := flowSlotsMin
	for n < flowSlotsInitial && n*3/4 < max {
		n *= 2
	}
	return &flowTable{slots: make([]flowSlot, n), due: newDue(n), gen: 1, seed: rand.Uint64(), max: max, earliest: math.MaxInt64}
}

func newDue(n int) []int64 {
	d := make([]int64, n)
	for i := range d {
		d[i] = math.MaxInt64
	}
	return d
}

// touched records when the flow in slot i times out, after it started or
// changed state (which can shorten its timeout), and lowers the table's
// earliest expiry to it.
func (t *flowTable) touched(i int) {
	f := &t.slots[i].flow
	d := int64(math.MinInt64) // a clock that may wrap: always look
	if f.last >= 0 && f.last <= math.MaxInt64-f.state.timeout() {
		d = f.last + f.state.timeout()
	}
	t.due[i] = d
	t.earliest = min(t.earliest, d)
}

// reset forgets every flow (a new capture starts) but keeps the memory.
func (t *flowTable) reset() {
	t.gen++
	if t.gen == 0 { // wrapped: old generations would look live
		clear(t.slots)
		t.gen = 1
	}
	t.n = 0
	t.nextSweep, t.fullSweep = 0, 0
	t.earliest = math.MaxInt64
}

// find returns the slot of k, or the empty slot where k would go, and k's
// hash.
func (t *flowTable) find(k *flowKey) (i int, h uint32, found bool) {
	h = uint32(k.hash(t.seed))
	mask := len(t.slots) - 1
	for i = int(h) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.gen != t.gen {
			return i, h, false
		}
		if s.hash == h && s.key.eq(k) {
			return i, h, true
		}
	}
}

// get returns the live flow for k and its slot, dropping it if it has
// timed out. The pointer is valid until the table next changes; a
// caller that changes the flow's state calls touched(i) after.
func (t *flowTable) get(k *flowKey, ts int64) (*flow, int) {
	i, _, ok := t.find(k)
	if !ok {
		return nil, -1
	}
	f := &t.slots[i].flow
	if f.expired(ts) {
		t.remove(i)
		return nil, -1
	}
	return f, i
}

// remove drops the flow in slot i, counting it as expired unless it had
// closed, and shifts the slots after it back so that probing needs no
// tombstones.
func (t *flowTable) remove(i int) {
	if t.slots[i].state != stTCPClosed { // closed ones were counted when they closed
		t.expired++
	}
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].gen == t.gen; j = (j + 1) & mask {
		// Slot j moves into the hole at i unless its home lies
		// cyclically in (i, j].
		home := int(t.slots[j].hash) & mask
		if i <= j {
			if i < home && home <= j {
				continue
			}
		} else if home > i || home <= j {
			continue
		}
		t.slots[i] = t.slots[j]
		t.due[i] = t.due[j]
		i = j
	}
	t.slots[i].gen = 0
	t.due[i] = math.MaxInt64
	t.n--
}

// insert adds a flow for k, which is not in the table, or counts an
// overflow and returns nil when the table is full even after reclaiming
// expired flows. The caller sets the flow up, then calls touched(i).
func (t *flowTable) insert(k *flowKey, ts int64) (*flow, int) {
	if t.n >= t.max {
		if ts >= t.fullSweep {
			t.sweep(ts)
			t.fullSweep = ts + second
		}
		if t.n >= t.max {
			t.overflow++
			return nil, -1
		}
	}
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	i, h, _ := t.find(k)
	s := &t.slots[i]
	s.key, s.hash, s.gen = *k, h, t.gen
	t.due[i] = math.MinInt64 // until touched
	t.n++
	t.started++
	return &s.flow, i
}

// grow doubles the table.
func (t *flowTable) grow() {
	old, oldDue := t.slots, t.due
	t.slots, t.due = make([]flowSlot, 2*len(old)), newDue(2*len(old))
	mask := len(t.slots) - 1
	for j, s := range old {
		if s.gen != t.gen {
			continue
		}
		i := int(s.hash) & mask
		for t.slots[i].gen == t.gen {
			i = (i + 1) & mask
		}
		t.slots[i] = s
		t.due[i] = oldDue[j]
	}
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
	if t.n == 0 || ts <= t.earliest {
		return // no flow has timed out yet
	}
	// A removal may shift a later slot back into slot i: look at i again.
	// Slots only move back, so every flow is seen (some twice, which is
	// harmless).
	t.earliest = math.MaxInt64
	for i := 0; ; {
		i = t.scanDue(i, ts)
		if i == len(t.due) {
			return
		}
		s := &t.slots[i]
		switch {
		case s.gen != t.gen: // emptied by a reset
			t.due[i] = math.MaxInt64
		case s.expired(ts):
			t.remove(i)
			continue
		default: // it took packets since due was set
			t.touched(i)
		}
		i++
	}
}

// scanDue returns the first slot from i on that is due at ts (len(t.due)
// when none is), lowering t.earliest to the due times it passes. Its
// loop holds the slice and the minimum in registers: written with the
// table's fields, it loaded and stored them at every slot, which made
// the scan most of a sweep's time.
func (t *flowTable) scanDue(i int, ts int64) int {
	due, earliest := t.due, t.earliest
	for ; i < len(due); i++ {
		d := due[i]
		if ts > d {
			break
		}
		earliest = min(earliest, d) // not due, or empty
	}
	t.earliest = earliest
	return i
}
