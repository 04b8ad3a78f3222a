// Package engine is fwd's verdict machinery: the live rule table and the
// workers that answer queued packets from it.
//
// The live table is an atomic.Pointer to an immutable filter.Table (with
// its per-rule hit counters). Workers read it without locks; Swap
// publishes a new table with one store, carrying the hit counts of the
// rules it keeps. Building that table, all or nothing, is the rules
// lifecycle's job (package lifecycle), which the first load, SIGHUP,
// fwctl reload and runtime edits share.
//
// One Worker serves one queue. Its Decide is the hot path: decode the
// headers, build the lookup key, match, count. It takes no lock and
// allocates nothing; only the rate-limited log line of a drop does.
package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// Config configures an Engine.
type Config struct {
	// Log receives the rate-limited drop log.
	Log *slog.Logger
	// DropLogBurst is how many drops each worker logs per DropLogEvery;
	// the rest are counted and reported with the next line logged. Zero
	// means 10 per second.
	DropLogBurst int
	DropLogEvery time.Duration
	// OnFlow, when set, receives every new flow a worker decides (every
	// packet it answers that decodes as IP; not the undecodable ones).
	// Nil is off and costs one comparison.
	OnFlow FlowFunc
	// LatencySampleEvery, when above zero, times one Decide in that many
	// into the worker's latency histogram (Stats.Latency); zero times
	// none.
	LatencySampleEvery uint32
	// Drops, when set, receives every drop the drop log logs.
	Drops DropRecorder
	// LimitEntries is the size of the table of (rule, peer) pairs that
	// rules with a limit count in (see limit.go); zero means
	// DefaultLimitEntries.
	LimitEntries int
	// ForwardEgressMark, when not zero, is the mark bit the kernel rules
	// set on a container's new outbound flow before queueing it from
	// FORWARD: such a packet is egress, its peer the destination. Zero
	// means every packet queued from FORWARD is ingress.
	ForwardEgressMark uint32
}

// Engine holds the live table and the workers.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	live    atomic.Pointer[liveTable]
	lim     atomic.Pointer[limiter] // nil until a rule has a limit
	mu      sync.Mutex              // serializes Swap and Start/Stop
	workers []*Worker
	queues  []nfq.Queue
	started bool
	links   []filter.Link  // the host's interfaces (SetLinks), under mu
	aud     auditState     // audit mode (audit.go)
	retired []retiredQueue // queues Replace let go of, under mu
}

// liveTable is a table with its per-rule accept counters; a swap replaces
// both at once, so counts always belong to the table they are read with.
// A swap carries the count of every rule the new table keeps unchanged.
type liveTable struct {
	t    *filter.Table
	hits []atomic.Uint64 // by filter.Table.Slot
	// limits and limited are by slot too, nil when no rule has a limit:
	// each rule's limit, and the connections it dropped.
	limits  []ruleLimit
	limited []atomic.Uint64
}

func newLive(t *filter.Table) *liveTable {
	l := &liveTable{t: t, hits: make([]atomic.Uint64, t.NumSlots()), limits: ruleLimits(t)}
	if l.limits != nil {
		l.limited = make([]atomic.Uint64, t.NumSlots())
	}
	return l
}

// New returns an Engine answering from t (a nil t drops everything until
// a Swap).
func New(t *filter.Table, cfg Config) *Engine {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.DropLogBurst <= 0 {
		cfg.DropLogBurst = 10
	}
	if cfg.DropLogEvery <= 0 {
		cfg.DropLogEvery = time.Second
	}
	e := &Engine{cfg: cfg, log: cfg.Log}
	if t != nil {
		l := newLive(t)
		e.limiterFor(l.limits)
		e.wouldDropsFor(t)
		e.live.Store(l)
	}
	return e
}

// Table returns the live table (nil before the first one).
func (e *Engine) Table() *filter.Table {
	if l := e.live.Load(); l != nil {
		return l.t
	}
	return nil
}

// RuleHits returns how many new connections each rule of t accepted
// since the rule went live (a swap carries the counts of unchanged
// rules), keyed by the accepting verdict, and how many each ACL entry
// decided, keyed by filter.ACLKey; nil when t is not the live table.
func (e *Engine) RuleHits(t *filter.Table) map[filter.Result]uint64 {
	l := e.live.Load()
	if l == nil || l.t != t {
		return nil
	}
	hits := make(map[filter.Result]uint64)
	f := t.File()
	for gi := range f.Groups {
		g := &f.Groups[gi]
		count := func(v filter.Result) {
			if s := t.Slot(v); s >= 0 {
				hits[v] = l.hits[s].Load()
			}
		}
		for ri := range g.Ingress {
			count(filter.Result{Verdict: verdict.Accept, Dir: direction.Ingress, Group: int32(gi), Rule: int32(ri)})
		}
		for ri := range g.Egress {
			count(filter.Result{Verdict: verdict.Accept, Dir: direction.Egress, Group: int32(gi), Rule: int32(ri)})
		}
		if g.EgressOmitted {
			count(filter.Result{Verdict: verdict.Accept, Dir: direction.Egress, Group: int32(gi), Rule: filter.NoRule})
		}
	}
	for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
		for _, en := range f.ACL.List(d) {
			if s := t.ACLSlot(d, en.Number); s >= 0 {
				hits[filter.ACLKey(d, en.Number)] = l.hits[s].Load()
			}
		}
	}
	return hits
}

// Swap publishes t as the live table. The hit counts of the rules t
// keeps unchanged (same group, same direction, same text and traffic)
// carry over from the table it replaces, so that a reload or an edit
// does not zero the counts of the rules it did not touch.
func (e *Engine) Swap(t *filter.Table) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t == nil {
		e.live.Store(nil)
		return
	}
	old := e.live.Load()
	next := newLive(t)
	t.Bind(e.links) // before it is live: workers resolve interfaces from the first packet
	e.limiterFor(next.limits)
	e.wouldDropsFor(t)
	e.live.Store(next)
	// After the store, so that a count a worker adds to the old table
	// while the swap is under way is carried too (all but those added
	// between these loads and the worker's next Load of the pointer).
	if old != nil {
		carryHits(old, next)
		carryLimited(old, next)
	}
}

// RestrictsEgress reports whether the rules limit outbound traffic: some
// protocol or destination is not allowed out. When no group omits egress
// (AWS's default "all to anywhere") and no rule allows every protocol to
// every address of both families, outbound connections must be queued.
func RestrictsEgress(f *rules.File) bool {
	if f == nil {
		return true
	}
	var any4, any6 bool
	for i := range f.Groups {
		g := &f.Groups[i]
		if g.EgressOmitted {
			return false
		}
		for j := range g.Egress {
			r := &g.Egress[j]
			if !r.Proto.All {
				continue
			}
			for _, p := range r.Prefixes {
				if p.Bits() == 0 {
					any4 = any4 || p.Addr().Is4()
					any6 = any6 || p.Addr().Is6()
				}
			}
		}
	}
	return !(any4 && any6)
}

// Start gives each queue a Worker and starts it. On error the queues
// already started are closed again.
func (e *Engine) Start(queues []nfq.Queue) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return errors.New("engine already started")
	}
	e.started = true
	for i, q := range queues {
		w := e.NewWorker(i)
		if err := q.Start(w.Decide); err != nil {
			for _, s := range e.queues {
				s.Close()
			}
			e.queues, e.workers, e.started = nil, nil, false
			return fmt.Errorf("start queue worker %d: %w", i, err)
		}
		e.queues = append(e.queues, q)
		e.workers = append(e.workers, w)
	}
	return nil
}

// Stop closes every queue the engine started. The counters stay readable.
func (e *Engine) Stop() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, q := range e.queues {
		if err := q.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats are the engine's counters, summed over its workers.
type Stats struct {
	Accepted           uint64 // new flows accepted
	DroppedNoMatch     uint64 // no rule allows them
	DroppedACL         uint64 // an ACL entry denies them (AcceptedACL of Accepted: one allows them)
	DroppedLimited     uint64 // a rule allows them but its peer is over the rule's limit
	AcceptedACL        uint64
	DroppedNoTable     uint64  // before the first table (fail closed)
	DroppedUndecodable uint64  // not decodable as IPv4/IPv6 and a transport
	DropLogSkipped     uint64  // drops not logged because of the rate limit
	Latency            Latency // sampled Decide durations (Config.LatencySampleEvery)
	Queue              nfq.Stats
	Workers            int
}

// Stats sums the workers' counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Workers: len(e.workers)}
	workers, queues := e.workers, e.queues
	for _, r := range e.retired {
		workers, queues = append(slices.Clip(workers), r.w), append(slices.Clip(queues), r.q)
	}
	for _, w := range workers {
		s.Accepted += w.accepted.Load()
		s.DroppedNoMatch += w.noMatch.Load()
		s.DroppedACL += w.aclDeny.Load()
		s.DroppedLimited += w.limitedN.Load()
		s.AcceptedACL += w.aclAllow.Load()
		s.DroppedNoTable += w.noTable.Load()
		s.DroppedUndecodable += w.undecodable.Load()
		s.DropLogSkipped += w.logSkipped.Load()
		w.lat.addTo(&s.Latency)
	}
	for _, q := range queues {
		qs := q.Stats()
		s.Queue.Received += qs.Received
		s.Queue.RecvErrors += qs.RecvErrors
		s.Queue.VerdictErrors += qs.VerdictErrors
		s.Queue.Malformed += qs.Malformed
	}
	return s
}

// Worker answers one queue's packets. Decide must be called from one
// goroutine at a time (a queue's loop); the counters may be read from any.
type Worker struct {
	id    int
	e     *Engine
	dec   packet.Decoder
	pkt   packet.Packet
	now   func() time.Time
	limit dropLimiter
	// sampleEvery and sampleLeft pace the latency samples: one Decide
	// in sampleEvery is timed (0: none).
	sampleEvery, sampleLeft uint32
	lat                     latencyHist

	accepted, noMatch, noTable, undecodable, logSkipped atomic.Uint64
	aclDeny, aclAllow                                   atomic.Uint64
	limitedN                                            atomic.Uint64
	aud                                                 auditCounters // would-drops in audit mode
}

// NewWorker returns a worker reading e's live table. Start makes one per
// queue; tests and benchmarks call it directly.
func (e *Engine) NewWorker(id int) *Worker {
	return &Worker{
		id:    id,
		e:     e,
		now:   time.Now,
		limit: dropLimiter{burst: e.cfg.DropLogBurst, every: e.cfg.DropLogEvery},

		sampleEvery: e.cfg.LatencySampleEvery,
		sampleLeft:  e.cfg.LatencySampleEvery,
	}
}

// Drop reasons, as logged.
const (
	ReasonNoMatch     = "no-match"
	ReasonUndecodable = "undecodable"
	ReasonNoTable     = "no-table"
	ReasonACLDeny     = "acl-deny" // an ACL entry denies it; the log names the entry
)

// Decide answers one queued packet: verdict.Accept when the live table allows
// the connection it starts. Packets queued from OUTPUT, and from FORWARD
// carrying Config.ForwardEgressMark, are egress; all others ingress. It is an nfq.Handler.
func (w *Worker) Decide(m *nfq.Msg) verdict.Verdict {
	if w.sampleEvery == 0 {
		return w.decide(m)
	}
	if w.sampleLeft--; w.sampleLeft > 0 {
		return w.decide(m)
	}
	w.sampleLeft = w.sampleEvery
	start := time.Now()
	v := w.decide(m)
	w.lat.observe(time.Since(start))
	return v
}

func (w *Worker) decide(m *nfq.Msg) verdict.Verdict {
	dir := direction.Ingress
	if m.Hook == nfq.HookLocalOut || m.Hook == nfq.HookForward && m.Mark&w.e.cfg.ForwardEgressMark != 0 {
		dir = direction.Egress
	}
	p := &w.pkt
	w.dec.Decode(m.Payload, p)
	if p.Kind != packet.IP {
		if w.e.aud.on.Load() {
			return w.wouldDrop(nil, dir, p, filter.Result{}, ReasonUndecodable)
		}
		w.undecodable.Add(1)
		w.logDrop(dir, p, ReasonUndecodable)
		return verdict.Drop
	}
	l := w.e.live.Load()
	if l == nil {
		w.noTable.Add(1)
		w.logDrop(dir, p, ReasonNoTable)
		if w.e.cfg.OnFlow != nil {
			w.reportFlow(dir, p, verdict.Drop, filter.Result{}, ReasonNoTable)
		}
		return verdict.Drop
	}
	k := filter.KeyOf(p, dir)
	k.Ifindex = m.InDev
	if dir == direction.Egress {
		k.Ifindex = m.OutDev
	}
	v := l.t.Match(k)
	s := l.t.Slot(v)
	if s >= 0 && w.overLimit(l, s, p.Src) {
		if w.e.aud.on.Load() || l.t.Audits(k) {
			return w.wouldDrop(l, dir, p, v, ReasonLimited)
		}
		w.logDrop(dir, p, ReasonLimited)
		if w.e.cfg.OnFlow != nil {
			w.reportFlow(dir, p, verdict.Drop, v, ReasonLimited)
		}
		return verdict.Drop
	}
	if s >= 0 {
		l.hits[s].Add(1)
	}
	if v.Accepted() {
		w.accepted.Add(1)
		if v.ACL != 0 {
			w.aclAllow.Add(1)
		}
		if w.e.cfg.OnFlow != nil {
			w.reportFlow(dir, p, verdict.Accept, v, "")
		}
		return verdict.Accept
	}
	// A group in audit mode audits what the groups decide; an ACL deny
	// is not theirs and stays enforced (fwd --audit audits it too).
	if w.e.aud.on.Load() || v.ACL == 0 && l.t.Audits(k) {
		return w.wouldDrop(l, dir, p, v, reasonOf(v))
	}
	if v.ACL != 0 {
		w.aclDeny.Add(1)
		w.logACLDrop(dir, p, v.ACL)
		if w.e.cfg.OnFlow != nil {
			w.reportFlow(dir, p, verdict.Drop, v, ReasonACLDeny)
		}
		return verdict.Drop
	}
	w.noMatch.Add(1)
	w.logDrop(dir, p, ReasonNoMatch)
	if w.e.cfg.OnFlow != nil {
		w.reportFlow(dir, p, verdict.Drop, v, ReasonNoMatch)
	}
	return verdict.Drop
}

func (w *Worker) logDrop(dir direction.Dir, p *packet.Packet, reason string) {
	w.logDropEntry(dir, p, reason, 0)
}

// logACLDrop logs a drop by ACL entry n: the line carries "acl": n.
func (w *Worker) logACLDrop(dir direction.Dir, p *packet.Packet, n int32) {
	w.logDropEntry(dir, p, ReasonACLDeny, n)
}

func (w *Worker) logDropEntry(dir direction.Dir, p *packet.Packet, reason string, acl int32) {
	skipped, ok := w.dropLineDue()
	if !ok {
		return
	}
	peer := dropPeer(dir, p)
	args := dropArgs(dir, p, peer, reason)
	if acl != 0 {
		args = append(args, "acl", acl)
	}
	w.e.log.Info("dropped", append(args, "queue_worker", w.id, "not_logged_before", skipped)...)
	if r := w.e.cfg.Drops; r != nil {
		r.RecordDrop(DropEvent{Time: w.now(), Dir: dir, Peer: peer, Proto: p.Proto, Port: p.DstPort, Reason: reason, Worker: w.id})
	}
}

// dropLineDue reports whether the drop log takes a line now, and how
// many it skipped before; a line it does not take is counted.
func (w *Worker) dropLineDue() (skipped uint64, ok bool) {
	ok, skipped = w.limit.allow(w.now())
	if !ok {
		w.logSkipped.Add(1)
	}
	return skipped, ok
}

// dropPeer is a dropped packet's peer: its source in, its destination
// out; none for a packet that is not IP.
func dropPeer(dir direction.Dir, p *packet.Packet) netip.Addr {
	if p.Kind != packet.IP {
		return netip.Addr{}
	}
	return filter.KeyOf(p, dir).Peer
}

// dropArgs are the attributes every drop log line starts with.
func dropArgs(dir direction.Dir, p *packet.Packet, peer netip.Addr, reason string) []any {
	return []any{"dir", dir.String(), "peer", peer, "proto", p.Proto.String(), "port", p.DstPort, "reason", reason}
}

// dropLimiter lets burst log lines through per interval, and counts the
// rest. It belongs to one worker and is not safe for concurrent use.
type dropLimiter struct {
	burst   int
	every   time.Duration
	start   time.Time
	used    int
	skipped uint64
}

// allow reports whether to log now and, when it does, how many drops went
// unlogged since the last line.
func (l *dropLimiter) allow(now time.Time) (bool, uint64) {
	if now.Sub(l.start) >= l.every {
		l.start, l.used = now, 0
	}
	if l.used >= l.burst {
		l.skipped++
		return false, 0
	}
	l.used++
	s := l.skipped
	l.skipped = 0
	return true, s
}
