package rules

import "net/netip"

// TEMPORARY stand-ins for the lead's group references (issue 14), deleted
// when main's internal/rules lands them.

// Select is a stand-in for the lead's File.Select.
func (f *File) Select(groups []string) *File {
	c := *f
	c.Groups = nil
	for _, g := range f.Groups {
		for _, n := range groups {
			if g.Name == n {
				c.Groups = append(c.Groups, g)
			}
		}
	}
	return &c
}

// ResolveGroups is a stand-in for the lead's File.ResolveGroups.
func (f *File) ResolveGroups(members func(group string) []netip.Prefix) *File {
	c := *f
	return &c
}
