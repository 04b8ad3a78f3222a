package engine

import (
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// carryHits adds the counts of old's rules to the slots of the same
// rules in next. A rule is the same when its ID is (rules.Rule.ID: its
// group by name, its direction and its traffic, not its place or its
// description); IDs are unique in a file, so each old count goes to at
// most one new rule. A group that omits egress keeps the count of its
// default egress accept while it still omits it. It runs in Swap, off
// the hot path.
func carryHits(old, next *liveTable) {
	of, nf := old.t.File(), next.t.File()
	if of == nil || nf == nil {
		return
	}
	byID := make(map[string]int, of.NumRules())    // rule ID → slot in old
	groups := make(map[string]int, len(of.Groups)) // group name → index in of
	for gi := range of.Groups {
		g := &of.Groups[gi]
		groups[g.Name] = gi
		for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
			list := ruleList(g, d)
			for ri := range list {
				if s := old.t.Slot(accept(d, gi, ri)); s >= 0 && list[ri].ID != "" {
					byID[list[ri].ID] = s
				}
			}
		}
	}
	for gi := range nf.Groups {
		g := &nf.Groups[gi]
		for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
			list := ruleList(g, d)
			for ri := range list {
				from, ok := byID[list[ri].ID]
				if !ok {
					continue
				}
				if s := next.t.Slot(accept(d, gi, ri)); s >= 0 {
					next.hits[s].Add(old.hits[from].Load())
				}
			}
		}
		if ogi, ok := groups[g.Name]; ok && g.EgressOmitted && of.Groups[ogi].EgressOmitted {
			from := old.t.Slot(accept(direction.Egress, ogi, int(filter.NoRule)))
			to := next.t.Slot(accept(direction.Egress, gi, int(filter.NoRule)))
			if from >= 0 && to >= 0 {
				next.hits[to].Add(old.hits[from].Load())
			}
		}
	}
	carryACLHits(old, next)
}

// carryACLHits carries the counts of the ACL entries next keeps: same
// direction, same number, same action and traffic (an edit that changes
// an entry's action or peers starts its count again; a change of its
// description or expiry does not).
func carryACLHits(old, next *liveTable) {
	of, nf := old.t.File(), next.t.File()
	for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
		olist := of.ACL.List(d)
		for _, e := range nf.ACL.List(d) {
			i := of.ACL.Find(d, e.Number)
			if i < 0 || olist[i].Action != e.Action || !sameACLTraffic(&olist[i], &e) {
				continue
			}
			from, to := old.t.ACLSlot(d, e.Number), next.t.ACLSlot(d, e.Number)
			if from >= 0 && to >= 0 {
				next.hits[to].Add(old.hits[from].Load())
			}
		}
	}
}

func sameACLTraffic(a, b *rules.ACLEntry) bool {
	ra, rb := a.Rule(), b.Rule()
	return ra.SameTraffic(&rb)
}

func ruleList(g *rules.Group, d direction.Dir) []rules.Rule {
	if d == direction.Egress {
		return g.Egress
	}
	return g.Ingress
}

func accept(d direction.Dir, group, rule int) filter.Result {
	return filter.Result{Verdict: verdict.Accept, Dir: d, Group: int32(group), Rule: int32(rule)}
}
