package engine

import (
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// ruleKey names a rule across tables: its group, its direction and its
// text. Rules with equal keys are also compared by traffic (a prefix
// list named in the text may have changed).
type ruleKey struct {
	group string
	dir   direction.Dir
	text  string
}

// carryHits adds the counts of old's rules to the slots of the same
// rules in next. A rule is the same when its group (by name), direction,
// text and traffic are; each old rule's count goes to one new rule. A
// group that omits egress keeps the count of its default egress accept
// while it still omits it. It runs in Swap, off the hot path.
func carryHits(old, next *liveTable) {
	of, nf := old.t.File(), next.t.File()
	if of == nil || nf == nil {
		return
	}
	type oldRule struct {
		r    *rules.Rule
		slot int
	}
	byKey := make(map[ruleKey][]oldRule)
	groups := make(map[string]int, len(of.Groups)) // group name → index in of
	for gi := range of.Groups {
		g := &of.Groups[gi]
		groups[g.Name] = gi
		for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
			list := ruleList(g, d)
			for ri := range list {
				if s := old.t.Slot(accept(d, gi, ri)); s >= 0 {
					k := ruleKey{g.Name, d, list[ri].Format(d)}
					byKey[k] = append(byKey[k], oldRule{&list[ri], s})
				}
			}
		}
	}
	for gi := range nf.Groups {
		g := &nf.Groups[gi]
		for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
			list := ruleList(g, d)
			for ri := range list {
				k := ruleKey{g.Name, d, list[ri].Format(d)}
				cands := byKey[k]
				for ci, c := range cands {
					if !c.r.SameTraffic(&list[ri]) {
						continue
					}
					if s := next.t.Slot(accept(d, gi, ri)); s >= 0 {
						next.hits[s].Add(old.hits[c.slot].Load())
					}
					byKey[k] = append(cands[:ci:ci], cands[ci+1:]...)
					break
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
