package filter

import "github.com/fwd-project/fwd/internal/rules"

// audits says which of a table's group sets hold a group in audit mode
// (rules.Group.Audit): all of them (any: true, views nil) for a file
// without interfaces, else one flag per interface view.
type audits struct {
	any   bool
	views []bool
}

func auditsOf(f *rules.File, ix *ifaceIndex) audits {
	var a audits
	for i := range f.Groups {
		a.any = a.any || f.Groups[i].Audit
	}
	if !a.any || ix == nil {
		return a
	}
	a.views = make([]bool, len(ix.sets))
	for v, set := range ix.sets {
		for i := range f.Groups {
			if set[i] == 1 && f.Groups[i].Audit {
				a.views[v] = true
			}
		}
	}
	return a
}

// Audits reports whether a group that decides k is in audit mode: then
// a connection the table drops is to be accepted and counted as a
// would-drop. With groups per interface, only the groups attached to
// k's interface count. It allocates nothing and takes no lock.
func (t *Table) Audits(k Key) bool {
	if !t.audit.any {
		return false
	}
	if t.iface == nil || t.audit.views == nil {
		return true
	}
	return t.audit.views[t.iface.view(k)]
}

// AuditGroups names the groups in audit mode.
func (t *Table) AuditGroups() []string {
	if t.file == nil || !t.audit.any {
		return nil
	}
	var out []string
	for i := range t.file.Groups {
		if t.file.Groups[i].Audit {
			out = append(out, t.file.Groups[i].Name)
		}
	}
	return out
}
