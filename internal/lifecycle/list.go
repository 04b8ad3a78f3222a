package lifecycle

import (
	"slices"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// Rules lists the live rules, numbered, with hit counts when hits is
// not nil.
func (s *Service) Rules(hits func(*filter.Table) map[filter.Result]uint64) []RuleInfo {
	t := s.cfg.Target.Table()
	if t == nil || t.File() == nil {
		return []RuleInfo{}
	}
	var counts map[filter.Result]uint64
	if hits != nil {
		counts = hits(t)
	}
	f := t.File()
	out := make([]RuleInfo, 0, f.NumRules())
	for i, ref := range f.Numbered() {
		ri := info(f, ref, i+1)
		if counts != nil {
			n := counts[filter.Result{Verdict: verdict.Accept, Dir: ref.Dir, Group: int32(ref.Group), Rule: int32(ref.Index)}]
			ri.Hits = &n
		}
		out = append(out, ri)
	}
	return out
}

func findSame(f *rules.File, dir direction.Dir, r *rules.Rule, ifaces []string) (rules.RuleRef, bool) {
	for _, ref := range f.Numbered() {
		if ref.Dir == dir && coversIfaces(&f.Groups[ref.Group], ifaces) && f.RuleAt(ref).SameTraffic(r) {
			return ref, true
		}
	}
	return rules.RuleRef{}, false
}

// NumberOf is a rule's number as status lists it and delete takes it
// (from 1), 0 when ref is not a rule of f.
func NumberOf(f *rules.File, ref rules.RuleRef) int {
	return slices.Index(f.Numbered(), ref) + 1
}

func info(f *rules.File, ref rules.RuleRef, n int) RuleInfo {
	r := f.RuleAt(ref)
	return RuleInfo{Number: n, ID: r.ID, Group: f.Groups[ref.Group].Name, Index: ref.Index, RuleSpec: specOf(r, ref.Dir), Text: r.Format(ref.Dir), Interfaces: f.Groups[ref.Group].Interfaces}
}

// OpenEgress names the groups that omit egress (so allow all outbound).
func OpenEgress(f *rules.File) []string {
	var out []string
	for _, g := range f.Groups {
		if g.EgressOmitted {
			out = append(out, g.Name)
		}
	}
	return out
}
