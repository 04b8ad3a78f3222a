package engine

import (
	"hash/fnv"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// The limit of an ingress rule (rules.Limit) is enforced here, as ufw's
// limit is by iptables' recent match: each (rule, peer) has the times of
// its latest new connections through the rule, up to
// rules.MaxLimitConns of them; a connection arriving when Conns of them
// fall within the last Per is dropped (reason "limited"), and counted as
// an attempt too, so that a peer that keeps trying stays out until it
// pauses for Per.
//
// One table serves every worker. The kernel spreads a peer's flows over
// the queues by flow hash (--queue-balance hashes addresses and ports),
// so per-worker tables would each see a part of a peer's connections and
// let it through the limit up to once per queue; dividing the limit by
// the queues would instead brake a peer whose flows happen to land on
// one queue. A shared table sees them all. Its entries are atomic words:
// a worker claims an entry with a compare-and-swap of its tag and then
// writes its times with atomic stores, so the verdict path takes no lock
// and allocates nothing. Two workers deciding the same peer's
// connections in the same instant may both count against a time slot
// one of them then overwrites: the count can be one short for that
// instant, never wrong for longer.
//
// The table has a fixed number of entries (Config.LimitEntries, default
// DefaultLimitEntries), allocated when the first rule with a limit goes
// live. An entry is found by a seeded hash of (rule ID, peer) among
// limitProbe neighbours; a new peer takes an empty entry or one whose
// window has passed, else the least recently used of the neighbours,
// which is counted as an eviction (Stats.LimitEvictions): that peer's
// history is lost and it starts again from zero. An IPv6 peer is counted
// by its /64, the smallest block a host is usually given, so that one
// host cannot step around its limit by changing addresses in its own
// /64.
//
// The state is keyed by the rule's ID (rules.Rule.ID), which names its
// group, direction and traffic: a reload or an edit that keeps a rule
// keeps its peers' history, one that changes what the rule allows starts
// it again (the old entries age out). The limited-flow counts by rule
// are carried by Swap like the hit counts.

// DefaultLimitEntries is the size of the limit table when
// Config.LimitEntries is zero: 65536 (rule, peer) pairs, 8 MiB.
const DefaultLimitEntries = 1 << 16

// ReasonLimited is the drop reason of a connection over its rule's
// limit.
const ReasonLimited = "limited"

// limitProbe is how many neighbouring entries a (rule, peer) may use.
const limitProbe = 4

// limitTick is the limiter's clock resolution.
const limitTick = 100 * time.Millisecond

// ruleLimit is a rule slot's limit as the verdict path reads it.
type ruleLimit struct {
	key   uint64 // hash of the rule's ID; 0: the slot has no limit
	conns uint32
	per   uint32 // in ticks
}

// limitEntry is one (rule, peer) of the table. Every field is atomic:
// workers read and write entries concurrently, and status reads them.
type limitEntry struct {
	tag    atomic.Uint64 // the (rule, peer) hash, low bit set; 0: empty
	rule   atomic.Uint64 // ruleLimit.key
	hi, lo atomic.Uint64 // the peer (IPv4-mapped, or an IPv6 /64)
	until  atomic.Uint32 // tick at which the latest attempt leaves the window
	next   atomic.Uint32 // where the next time goes in at
	at     [rules.MaxLimitConns]atomic.Uint32
}

// limiter is the table of (rule, peer) entries.
type limiter struct {
	seed    uint64
	mask    uint64
	entries []limitEntry
	epoch   time.Time
	evicted atomic.Uint64 // live entries taken over by another peer
	missed  atomic.Uint64 // attempts not counted: the entry was taken under us
}

// newLimiter returns a table of n entries, rounded up to a power of two.
func newLimiter(n int, epoch time.Time) *limiter {
	if n <= 0 {
		n = DefaultLimitEntries
	}
	size := 1 << bits.Len(uint(n-1))
	return &limiter{seed: rand.Uint64(), mask: uint64(size - 1), entries: make([]limitEntry, size), epoch: epoch}
}

// tick is now on the limiter's clock, from 1.
func (lm *limiter) tick(now time.Time) uint32 {
	return uint32(now.Sub(lm.epoch)/limitTick) + 1
}

// peerKey is the peer as the limiter counts it: an IPv4 address, or an
// IPv6 address's /64.
func peerKey(a netip.Addr) (hi, lo uint64) {
	b := a.As16() // IPv4 as ::ffff:a.b.c.d
	hi = uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo = uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 | uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	if !a.Unmap().Is4() {
		lo = 0
	}
	return hi, lo
}

// mix64 is splitmix64's finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// over records an attempt by peer through the rule rl at tick now and
// reports whether it is over the limit: rl.conns attempts already fall
// within the window. It allocates nothing and takes no lock.
func (lm *limiter) over(rl ruleLimit, peer netip.Addr, now uint32) bool {
	hi, lo := peerKey(peer)
	h := mix64(mix64(mix64(lm.seed^rl.key)^hi)^lo) | 1
	for try := 0; try < 2; try++ {
		var victim *limitEntry
		var victimTag uint64
		var victimUntil uint32
		for j := uint64(0); j < limitProbe; j++ {
			e := &lm.entries[(h+j)&lm.mask]
			t := e.tag.Load()
			if t == h {
				return e.record(rl, now)
			}
			u := e.until.Load()
			switch {
			case t == 0 || int32(u-now) <= 0: // empty, or its window has passed
				if victim == nil || victimUntil != 0 {
					victim, victimTag, victimUntil = e, t, 0
				}
			case victim == nil || victimUntil != 0 && int32(u-victimUntil) < 0: // least recently used
				victim, victimTag, victimUntil = e, t, u
			}
		}
		if !victim.tag.CompareAndSwap(victimTag, h) {
			continue // another worker took it: look again
		}
		if victimUntil != 0 {
			lm.evicted.Add(1)
		}
		victim.rule.Store(rl.key)
		victim.hi.Store(hi)
		victim.lo.Store(lo)
		for i := range victim.at {
			victim.at[i].Store(0)
		}
		victim.next.Store(0)
		return victim.record(rl, now)
	}
	lm.missed.Add(1)
	return false
}

// record counts the attempts within the window, then adds this one.
func (e *limitEntry) record(rl ruleLimit, now uint32) bool {
	n := uint32(0)
	for i := range e.at {
		if t := e.at[i].Load(); t != 0 && now-t < rl.per {
			n++
		}
	}
	i := (e.next.Add(1) - 1) % rules.MaxLimitConns
	e.at[i].Store(now)
	e.until.Store(now + rl.per)
	return n >= rl.conns
}

// inWindow counts the entry's attempts within per ticks of now.
func (e *limitEntry) inWindow(per, now uint32) uint32 {
	n := uint32(0)
	for i := range e.at {
		if t := e.at[i].Load(); t != 0 && now-t < per {
			n++
		}
	}
	return n
}

// ruleKey is the limiter's name for a rule: a hash of its ID.
func ruleKey(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64() | 1
}

// ruleLimits returns the limits of t's rule slots (nil when no rule has
// one) and the counters of the flows they dropped.
func ruleLimits(t *filter.Table) []ruleLimit {
	f := t.File()
	if f == nil {
		return nil
	}
	var out []ruleLimit
	for gi := range f.Groups {
		g := &f.Groups[gi]
		for ri := range g.Ingress {
			r := &g.Ingress[ri]
			if r.Limit == nil {
				continue
			}
			s := t.Slot(accept(direction.Ingress, gi, ri))
			if s < 0 {
				continue
			}
			if out == nil {
				out = make([]ruleLimit, t.NumSlots())
			}
			out[s] = ruleLimit{key: ruleKey(r.ID), conns: uint32(r.Limit.Conns), per: uint32(r.Limit.Per / limitTick)}
		}
	}
	return out
}

// limits returns the limiter, making it when t is the first table with
// a limit. It runs under e.mu (New, Swap).
func (e *Engine) limiterFor(lims []ruleLimit) *limiter {
	lm := e.lim.Load()
	if lm == nil && lims != nil {
		lm = newLimiter(e.cfg.LimitEntries, time.Now())
		e.lim.Store(lm)
	}
	return lm
}

// overLimit reports whether the connection p opens through slot s of l
// is over the rule's limit (and counts it); false when the rule has
// none.
func (w *Worker) overLimit(l *liveTable, s int, p netip.Addr) bool {
	if l.limits == nil || l.limits[s].key == 0 {
		return false
	}
	lm := w.e.lim.Load()
	if lm == nil {
		return false
	}
	if !lm.over(l.limits[s], p, lm.tick(w.now())) {
		return false
	}
	l.limited[s].Add(1)
	w.limitedN.Add(1)
	return true
}

// carryLimited carries the limited-flow counts of the rules next keeps
// (same ID), as carryHits does for the hits.
func carryLimited(old, next *liveTable) {
	if old.limits == nil || next.limits == nil {
		return
	}
	of, nf := old.t.File(), next.t.File()
	byID := map[string]int{}
	for gi := range of.Groups {
		for ri, r := range of.Groups[gi].Ingress {
			if s := old.t.Slot(accept(direction.Ingress, gi, ri)); s >= 0 && r.Limit != nil {
				byID[r.ID] = s
			}
		}
	}
	for gi := range nf.Groups {
		for ri, r := range nf.Groups[gi].Ingress {
			from, ok := byID[r.ID]
			if s := next.t.Slot(accept(direction.Ingress, gi, ri)); ok && s >= 0 && r.Limit != nil {
				next.limited[s].Add(old.limited[from].Load())
			}
		}
	}
}

// maxLimitedPeers bounds the peers LimitStatus lists for one rule.
const maxLimitedPeers = 16

// RuleLimit is what LimitStatus says of one rule with a limit.
type RuleLimit struct {
	ID      string
	Conns   int
	Per     time.Duration
	Limited uint64       // connections dropped over the limit since the rule went live
	Over    int          // peers over the limit now
	Peers   []netip.Addr // up to 16 of them, lowest first (an IPv6 peer as its /64's first address)
}

// LimitStats are the limit table's figures.
type LimitStats struct {
	Entries   int    // the table's size; 0 before the first rule with a limit
	InUse     int    // entries whose window has not passed
	Evictions uint64 // live entries taken over by another peer
	Missed    uint64 // attempts not counted (an entry taken under a worker)
}

// LimitStatus lists the rules of t with a limit, in file order, with the
// peers over it now; nil when t is not the live table or has none. It
// scans the table: it is for status and metrics, not the hot path.
func (e *Engine) LimitStatus(t *filter.Table) ([]RuleLimit, LimitStats) {
	var st LimitStats
	lm := e.lim.Load()
	if lm != nil {
		st.Entries, st.Evictions, st.Missed = len(lm.entries), lm.evicted.Load(), lm.missed.Load()
	}
	l := e.live.Load()
	if l == nil || l.t != t || l.limits == nil {
		if lm != nil {
			st.InUse = lm.inUse(time.Now())
		}
		return nil, st
	}
	var out []RuleLimit
	byKey := map[uint64]int{}
	f := t.File()
	for gi := range f.Groups {
		for ri, r := range f.Groups[gi].Ingress {
			s := t.Slot(accept(direction.Ingress, gi, ri))
			if r.Limit == nil || s < 0 {
				continue
			}
			byKey[l.limits[s].key] = len(out)
			out = append(out, RuleLimit{ID: r.ID, Conns: r.Limit.Conns, Per: r.Limit.Per, Limited: l.limited[s].Load()})
		}
	}
	if lm == nil {
		return out, st
	}
	now := lm.tick(time.Now())
	for i := range lm.entries {
		en := &lm.entries[i]
		if en.tag.Load() == 0 || int32(en.until.Load()-now) <= 0 {
			continue
		}
		st.InUse++
		k, ok := byKey[en.rule.Load()]
		if !ok {
			continue
		}
		rl := &out[k]
		if en.inWindow(uint32(rl.Per/limitTick), now) < uint32(rl.Conns) {
			continue
		}
		rl.Over++
		var b [16]byte
		hi, lo := en.hi.Load(), en.lo.Load()
		for j := range 8 {
			b[j], b[8+j] = byte(hi>>(56-8*j)), byte(lo>>(56-8*j))
		}
		rl.Peers = append(rl.Peers, netip.AddrFrom16(b).Unmap())
	}
	for i := range out {
		slices.SortFunc(out[i].Peers, func(a, b netip.Addr) int { return a.Compare(b) })
		out[i].Peers = slices.Compact(out[i].Peers)
		if len(out[i].Peers) > maxLimitedPeers {
			out[i].Peers = out[i].Peers[:maxLimitedPeers]
		}
	}
	return out, st
}

// inUse counts the entries whose window has not passed.
func (lm *limiter) inUse(now time.Time) int {
	t, n := lm.tick(now), 0
	for i := range lm.entries {
		if lm.entries[i].tag.Load() != 0 && int32(lm.entries[i].until.Load()-t) > 0 {
			n++
		}
	}
	return n
}
