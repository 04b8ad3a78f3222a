package replay

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/packet/packettest"
)

// TestPacketKey: packetKey is makeKey(p.Tuple()), both directions of a
// connection share a key with opposite orientations, and an IPv4 address
// keys as its IPv4-mapped IPv6 form, as As16 has it.
func TestPacketKey(t *testing.T) {
	pkts := []struct {
		name     string
		pkt, rev []byte
	}{
		{"tcp", packettest.TCP(peer, hostS, 40000, 443, syn), packettest.TCP(hostS, peer, 443, 40000, synack)},
		{"udp", packettest.UDP(dns, hostS, 5353, 53, []byte("q")), packettest.UDP(hostS, dns, 53, 5353, nil)},
		{"same address", packettest.UDP(hostS, hostS, 5353, 53, nil), packettest.UDP(hostS, hostS, 53, 5353, nil)},
		{"same address and port", packettest.UDP(hostS, hostS, 53, 53, nil), packettest.UDP(hostS, hostS, 53, 53, nil)},
		{"icmp echo", packettest.Echo(peer, hostS, 7, 1), packettest.EchoReply(hostS, peer, 7, 1)},
		{"icmp error", packettest.ICMPError(router, hostS, 3, 3, packettest.TCP(hostS, peer, 443, 40000, synack)), nil},
		{"icmpv6 echo", packettest.Echo(peer6, host6S, 9, 1), packettest.EchoReply(host6S, peer6, 9, 1)},
		{"tcp ipv6", packettest.TCP(peer6, host6S, 40000, 443, syn), packettest.TCP(host6S, peer6, 443, 40000, synack)},
		{"tcp mapped", packettest.TCP("::ffff:198.18.1.7", host6S, 40000, 443, syn), nil},
		{"later fragment", packettest.Fragments(packettest.UDP(dns, hostS, 5353, 53, make([]byte, 64)), 24, 0)[1], nil},
	}
	var d packet.Decoder
	for _, tt := range pkts {
		t.Run(tt.name, func(t *testing.T) {
			var p, q packet.Packet
			d.Decode(tt.pkt, &p)
			if p.Kind != packet.IP {
				t.Fatalf("packet does not decode")
			}
			k, srcIsA := packetKey(&p)
			if wk, wa := makeKey(p.Tuple()); k != wk || srcIsA != wa {
				t.Errorf("packetKey %+v %v, makeKey(Tuple) %+v %v", k, srcIsA, wk, wa)
			}
			if p.HasInner {
				ik, _ := makeKey(p.Inner)
				if ik == k {
					t.Errorf("inner key equals the outer one: %+v", k)
				}
			}
			if tt.rev == nil {
				return
			}
			d.Decode(tt.rev, &q)
			rk, revIsA := packetKey(&q)
			if rk != k {
				t.Errorf("reply key %+v, request key %+v", rk, k)
			}
			symmetric := p.Src == p.Dst && p.SrcPort == p.DstPort
			if !symmetric && revIsA == srcIsA {
				t.Errorf("both directions are side a=%v", srcIsA)
			}
		})
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var b [4]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		v4 := netip.AddrFrom4(b)
		w0, w1 := addrWords(v4)
		m0, m1 := addrWords(netip.AddrFrom16(v4.As16()))
		if w0 != m0 || w1 != m1 {
			t.Fatalf("%v keys as %x %x, its mapped form as %x %x", v4, w0, w1, m0, m1)
		}
	}
}

// refFlowTable is the flow table as a Go map and a slab (the first
// implementation), the reference for flowTable.
type refFlowTable struct {
	idx       map[flowKey]int32
	slab      []flow
	free      []int32
	max       int
	nextSweep int64
	fullSweep int64

	started, expired, closed, overflow uint64
}

func (t *refFlowTable) get(k flowKey, ts int64) *flow {
	i, ok := t.idx[k]
	if !ok {
		return nil
	}
	if t.slab[i].expired(ts) {
		t.remove(k)
		return nil
	}
	return &t.slab[i]
}

func (t *refFlowTable) remove(k flowKey) {
	i := t.idx[k]
	if t.slab[i].state != stTCPClosed {
		t.expired++
	}
	delete(t.idx, k)
	t.free = append(t.free, i)
}

func (t *refFlowTable) insert(k flowKey, ts int64) *flow {
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

func (t *refFlowTable) maybeSweep(ts int64) {
	if ts < t.nextSweep {
		return
	}
	if t.nextSweep != 0 {
		t.sweep(ts)
	}
	t.nextSweep = ts + sweepEvery
}

func (t *refFlowTable) sweep(ts int64) {
	for k, i := range t.idx {
		if t.slab[i].expired(ts) {
			t.remove(k)
		}
	}
}

// TestFlowTableMatchesMap drives flowTable and the map-based reference
// with the same random operations (lookups, new flows, state changes,
// removals, sweeps, resets, a full table, growth well past the initial
// size) and checks that they always agree.
func TestFlowTableMatchesMap(t *testing.T) {
	tests := []struct {
		name      string
		max, keys int
		tick      int64 // most capture time between operations
		resets    bool
	}{
		{"tiny table, full often", 3, 8, 200e6, true},
		{"small", 100, 300, 200e6, true},
		{"grows", 10000, 30000, 1e6, false},
	}
	states := []flowState{stTCPSynSent, stTCPEstablished, stTCPHalfClosed, stTCPClosed, stUDP, stUDPStream, stICMP, stOther}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tt.max), 7))
			keys := make([]flowKey, tt.keys)
			for i := range keys {
				a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
				keys[i].set(6, a, host4, uint16(rng.Uint32()), 443)
			}
			got := newFlowTable(tt.max)
			ref := &refFlowTable{idx: map[flowKey]int32{}, max: tt.max}
			ts := int64(0)
			live := func() int {
				n := 0
				for i := range got.slots {
					if got.slots[i].gen == got.gen {
						n++
					}
				}
				return n
			}
			for step := range 200000 {
				ts += rng.Int64N(tt.tick)
				if tt.resets && rng.IntN(5000) == 0 {
					ts += 200 * second // everything short-lived times out
				}
				k := keys[rng.IntN(len(keys))]
				switch op := rng.IntN(100); {
				case op < 70: // a packet: look up, then update or start
					gf, gi := got.get(&k, ts)
					rf := ref.get(k, ts)
					if (gf == nil) != (rf == nil) {
						t.Fatalf("step %d: get %v: table found %v, reference %v", step, k, gf != nil, rf != nil)
					}
					st := states[rng.IntN(len(states))]
					switch {
					case gf != nil && rng.IntN(10) == 0:
						got.remove(gi)
						ref.remove(k)
					case gf != nil:
						was := gf.state
						gf.last, gf.state = ts, st
						if st != was { // as sim does: same state, later time out
							got.touched(gi)
						}
						rf.last, rf.state = ts, st
					default:
						var ii int
						gf, ii = got.insert(&k, ts)
						rf = ref.insert(k, ts)
						if (gf == nil) != (rf == nil) {
							t.Fatalf("step %d: insert: table %v, reference %v", step, gf != nil, rf != nil)
						}
						if gf != nil {
							*gf = flow{last: ts, state: st}
							got.touched(ii)
							*rf = flow{last: ts, state: st}
						}
					}
				case op < 99:
					got.maybeSweep(ts)
					ref.maybeSweep(ts)
				default:
					if tt.resets && rng.IntN(20) == 0 {
						got.reset()
						ref = &refFlowTable{idx: map[flowKey]int32{}, max: tt.max,
							started: ref.started, expired: ref.expired, closed: ref.closed, overflow: ref.overflow}
					}
				}
				if got.n != len(ref.idx) || got.started != ref.started || got.expired != ref.expired || got.overflow != ref.overflow {
					t.Fatalf("step %d: table n=%d started=%d expired=%d overflow=%d, reference n=%d started=%d expired=%d overflow=%d",
						step, got.n, got.started, got.expired, got.overflow, len(ref.idx), ref.started, ref.expired, ref.overflow)
				}
			}
			if n := live(); n != got.n || n != len(ref.idx) {
				t.Fatalf("%d live slots, n=%d, reference %d", n, got.n, len(ref.idx))
			}
			for k, i := range ref.idx {
				i2, _, ok := got.find(&k)
				if !ok || got.slots[i2].flow != ref.slab[i] {
					t.Fatalf("flow %v: table %v %+v, reference %+v", k, ok, got.slots[i2].flow, ref.slab[i])
				}
			}
			if got.started == 0 || got.expired == 0 {
				t.Errorf("the operations did not exercise the table: %d started, %d expired", got.started, got.expired)
			}
			if tt.max < tt.keys && got.overflow == 0 {
				t.Errorf("the table never filled up")
			}
			if tt.max > flowSlotsInitial && len(got.slots) <= flowSlotsInitial {
				t.Errorf("the table never grew: %d slots", len(got.slots))
			}
		})
	}
}
