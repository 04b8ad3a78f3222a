package engine

import (
	"sync/atomic"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/suggest"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// Audit mode (fwd --audit): every new flow is decided as usual, and one
// the rules would drop (no rule allows it, an ACL entry denies it, or
// its peer is over a rule's limit; or it cannot be decoded) is accepted
// instead, counted by reason, logged by the drop log with would_drop=true
// and counted in a suggest.Table by port and peer prefix, from which
// `fwctl suggest` proposes rules. The flow log records it as ACCEPT.
// The switch is one atomic load on the drop path; the accept path does
// not look at it.

// auditState is the engine's audit switch and would-drop table.
type auditState struct {
	on    atomic.Bool
	table atomic.Pointer[suggest.Table]
}

// auditCounters are a worker's would-drops by reason.
type auditCounters struct {
	noMatch, acl, limited, undecodable atomic.Uint64
}

// SetAudit turns audit mode on or off. The would-drop table (of
// DefaultEntries slots, /24 and /64 unless SetWouldDrops set another)
// is made when audit is first turned on and kept.
func (e *Engine) SetAudit(on bool) {
	if on && e.aud.table.Load() == nil {
		e.aud.table.CompareAndSwap(nil, suggest.NewTable(0, suggest.Options{}))
	}
	e.aud.on.Store(on)
}

// SetWouldDrops sets the table would-drops are counted in.
func (e *Engine) SetWouldDrops(t *suggest.Table) { e.aud.table.Store(t) }

// Auditing reports whether audit mode is on for the whole host (fwd
// --audit).
func (e *Engine) Auditing() bool { return e.aud.on.Load() }

// AuditGroups names the live table's groups in audit mode (mode: audit):
// the traffic they decide is audited, not enforced.
func (e *Engine) AuditGroups() []string {
	if l := e.live.Load(); l != nil {
		return l.t.AuditGroups()
	}
	return nil
}

// wouldDropsFor makes the would-drop table when t has groups in audit
// mode and there is none yet, so that their would-drops are counted.
func (e *Engine) wouldDropsFor(t *filter.Table) {
	if len(t.AuditGroups()) > 0 && e.aud.table.Load() == nil {
		e.aud.table.CompareAndSwap(nil, suggest.NewTable(0, suggest.Options{}))
	}
}

// WouldDrops is the would-drop table; nil before audit was turned on.
func (e *Engine) WouldDrops() *suggest.Table { return e.aud.table.Load() }

// AuditStats are the would-drops by reason, summed over the workers.
type AuditStats struct {
	NoMatch, ACL, Limited, Undecodable uint64
}

// Total is the sum of the would-drops.
func (s AuditStats) Total() uint64 { return s.NoMatch + s.ACL + s.Limited + s.Undecodable }

// AuditStats sums the workers' would-drop counters.
func (e *Engine) AuditStats() AuditStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s AuditStats
	for _, w := range e.workers {
		s.NoMatch += w.aud.noMatch.Load()
		s.ACL += w.aud.acl.Load()
		s.Limited += w.aud.limited.Load()
		s.Undecodable += w.aud.undecodable.Load()
	}
	return s
}

// wouldDrop accepts, in audit mode, a flow the rules drop for reason
// (v the table's answer, l the live table, nil for an undecodable
// packet), counting and logging it.
func (w *Worker) wouldDrop(l *liveTable, dir direction.Dir, p *packet.Packet, v filter.Result, reason string) verdict.Verdict {
	switch reason {
	case ReasonNoMatch:
		w.aud.noMatch.Add(1)
	case ReasonACLDeny:
		w.aud.acl.Add(1)
	case ReasonLimited:
		w.aud.limited.Add(1)
	default:
		w.aud.undecodable.Add(1)
	}
	if l != nil {
		if t := w.e.aud.table.Load(); t != nil {
			t.Add(filter.KeyOf(p, dir), w.now())
		}
	}
	w.logWouldDrop(l, dir, p, v, reason)
	if w.e.cfg.OnFlow != nil && p.Kind == packet.IP {
		w.reportFlow(dir, p, verdict.Accept, v, reason)
	}
	return verdict.Accept
}

// logWouldDrop is the drop log's line for a would-drop: "dropped" with
// would_drop=true and, when a rule or ACL entry decided, its text.
func (w *Worker) logWouldDrop(l *liveTable, dir direction.Dir, p *packet.Packet, v filter.Result, reason string) {
	skipped, ok := w.dropLineDue()
	if !ok {
		return
	}
	decided := ""
	if l != nil && (v.ACL != 0 || v.Rule >= 0 && v.Group >= 0) {
		decided = l.t.Describe(v)
	}
	args := append([]any{"would_drop", true}, dropArgs(dir, p, dropPeer(dir, p), reason)...)
	w.e.log.Info("dropped", append(args, "rule", decided, "queue_worker", w.id, "not_logged_before", skipped)...)
}

// reasonOf is the drop reason of a drop verdict of the table.
func reasonOf(v filter.Result) string {
	if v.ACL != 0 {
		return ReasonACLDeny
	}
	return ReasonNoMatch
}
