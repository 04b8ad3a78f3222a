package lifecycle

import (
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// ACLInfo is one ACL entry of the live table, as status lists it:
// ingress entries then egress ones, each by number (the order in which
// they are evaluated).
type ACLInfo struct {
	Number int    `json:"number"` // unique in its direction (RuleSpec.Dir)
	Action string `json:"action"` // allow or deny
	RuleSpec
	// Expires is when the entry lifts itself (RFC 3339), absent when
	// never; Expired is set when the live table was compiled after it,
	// so that no connection matches the entry any more.
	Expires string  `json:"expires,omitempty"`
	Expired bool    `json:"expired,omitempty"`
	Text    string  `json:"text"` // e.g. "100 deny tcp 22 from 203.0.113.9"
	Hits    *uint64 `json:"hits"` // connections it decided; null when not counted
}

// ACL lists the live table's ACL entries, with hit counts (keyed by
// filter.ACLKey) when hits is not nil; empty when there are none.
func (s *Service) ACL(hits func(*filter.Table) map[filter.Result]uint64) []ACLInfo {
	t := s.cfg.Target.Table()
	if t == nil || t.File() == nil || t.File().ACL.Len() == 0 {
		return nil
	}
	var counts map[filter.Result]uint64
	if hits != nil {
		counts = hits(t)
	}
	return aclInfos(t.File(), t.CompiledAt(), counts)
}

func aclInfos(f *rules.File, now time.Time, counts map[filter.Result]uint64) []ACLInfo {
	out := make([]ACLInfo, 0, f.ACL.Len())
	for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
		list := f.ACL.List(d)
		for _, i := range f.ACL.Sorted(d) {
			out = append(out, aclInfo(&list[i], d, now, counts))
		}
	}
	return out
}

// aclInfo lists one entry; Expired is judged at now (none when zero),
// Hits set when counts is not nil.
func aclInfo(e *rules.ACLEntry, d direction.Dir, now time.Time, counts map[filter.Result]uint64) ACLInfo {
	r := e.Rule()
	r.Description = e.Description
	ai := ACLInfo{Number: e.Number, Action: e.Action.String(), RuleSpec: specOf(&r, d), Text: e.Format(d)}
	if !e.Expires.IsZero() {
		ai.Expires = e.Expires.UTC().Format(time.RFC3339)
		ai.Expired = !now.IsZero() && e.Expired(now)
	}
	if counts != nil {
		n := counts[filter.ACLKey(d, e.Number)]
		ai.Hits = &n
	}
	return ai
}
