package rules

import "github.com/fwd-project/fwd/internal/types/direction"

// RuleRef names one rule of a file: the group's index, the list and the
// rule's index in it.
type RuleRef struct {
	Group int
	Dir   direction.Dir
	Index int
}

// Numbered lists every rule of the file in the order `fwctl status
// numbered` shows them, which is the numbering `fwctl delete N` uses
// (element 0 is rule 1): groups in file order, in each group its ingress
// rules then its egress rules.
func (f *File) Numbered() []RuleRef {
	out := make([]RuleRef, 0, f.NumRules())
	for gi := range f.Groups {
		g := &f.Groups[gi]
		for i := range g.Ingress {
			out = append(out, RuleRef{Group: gi, Dir: direction.Ingress, Index: i})
		}
		for i := range g.Egress {
			out = append(out, RuleRef{Group: gi, Dir: direction.Egress, Index: i})
		}
	}
	return out
}

// RuleAt returns the rule ref names, or nil when there is none.
func (f *File) RuleAt(ref RuleRef) *Rule {
	if ref.Group < 0 || ref.Group >= len(f.Groups) {
		return nil
	}
	list := f.Groups[ref.Group].Ingress
	if ref.Dir == direction.Egress {
		list = f.Groups[ref.Group].Egress
	}
	if ref.Index < 0 || ref.Index >= len(list) {
		return nil
	}
	return &list[ref.Index]
}

// GroupIndex returns the index of the named group, or -1.
func (f *File) GroupIndex(name string) int {
	for i := range f.Groups {
		if f.Groups[i].Name == name {
			return i
		}
	}
	return -1
}
