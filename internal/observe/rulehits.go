package observe

import (
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// ruleHit is one rule slot of the live table with its accept count.
type ruleHit struct {
	Group  string
	Dir    direction.Dir
	Number int    // as fwctl status numbers it; 0 for a group's default egress accept
	ID     string // the rule's stable ID (sgr-...); "" for a group's default egress accept
	Text   string // the rule in words
	Hits   uint64
}

// Label is the rule label of the metrics: the rule's ID, which stays
// the same when other rules are added or deleted (a number would move a
// time series to another rule), or "default".
func (r ruleHit) Label() string {
	if r.ID == "" {
		return "default"
	}
	return r.ID
}

// ruleHits lists the live table's rule slots, in fwctl status order,
// each group's default egress accept (egress omitted) after its rules.
// Its length is bounded by the table's slots: no peer ever becomes a
// label.
func ruleHits(t *filter.Table, hits map[filter.Result]uint64) []ruleHit {
	if t == nil || t.File() == nil {
		return nil
	}
	f := t.File()
	out := make([]ruleHit, 0, t.NumSlots())
	last := -1
	for i, ref := range f.Numbered() {
		if ref.Group != last {
			out = appendDefault(out, t, last, hits)
			last = ref.Group
		}
		v := filter.Result{Verdict: verdict.Accept, Dir: ref.Dir, Group: int32(ref.Group), Rule: int32(ref.Index)}
		r := f.RuleAt(ref)
		out = append(out, ruleHit{Group: f.Groups[ref.Group].Name, Dir: ref.Dir, Number: i + 1, ID: r.ID,
			Text: r.Format(ref.Dir), Hits: hits[v]})
	}
	out = appendDefault(out, t, last, hits)
	// Groups without rules may still omit egress.
	for gi := range f.Groups {
		if len(f.Groups[gi].Ingress)+len(f.Groups[gi].Egress) == 0 {
			out = appendDefault(out, t, gi, hits)
		}
	}
	return out
}

func appendDefault(out []ruleHit, t *filter.Table, gi int, hits map[filter.Result]uint64) []ruleHit {
	if gi < 0 || !t.File().Groups[gi].EgressOmitted {
		return out
	}
	v := filter.Result{Verdict: verdict.Accept, Dir: direction.Egress, Group: int32(gi), Rule: filter.NoRule}
	return append(out, ruleHit{Group: t.File().Groups[gi].Name, Dir: direction.Egress,
		Text: "all to anywhere (egress omitted)", Hits: hits[v]})
}
