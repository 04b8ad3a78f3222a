package lifecycle

import (
	"fmt"
	"slices"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// IfaceGroupPrefix names the group an edit on one interface goes to when
// the request names none: "local-" and the interface (local-eth1).
const IfaceGroupPrefix = "local-"

// editGroup returns the group an add goes to and, for an add on an
// interface, the interfaces that group is attached to.
func editGroup(req AddRequest, def string) (string, []string, *Error) {
	group := req.Group
	if req.Interface == "" {
		if group == "" {
			group = def
		}
		return group, nil, nil
	}
	if e := checkIface(req.Interface); e != nil {
		return "", nil, e
	}
	if group == "" {
		group = IfaceGroupPrefix + req.Interface
	}
	return group, []string{req.Interface}, nil
}

// checkIface refuses an interface name or pattern an edit cannot name.
func checkIface(iface string) *Error {
	if err := rules.CheckIfacePattern(iface); err != nil {
		return badRequest(fmt.Sprintf("bad interface: %v", err))
	}
	return nil
}

// addOn adds rules to group, on ifaces when not nil.
func addOn(path string, data []byte, group string, ifaces []string, d direction.Dir, rs []rules.Rule, opts rules.Options) ([]byte, error) {
	if ifaces == nil {
		return rules.AddRules(path, data, group, d, rs, opts)
	}
	return rules.AddRulesOn(path, data, group, ifaces, d, rs, opts)
}

// coversIfaces reports whether group g's rules hold on every interface
// ifaces names (nil: every interface), so that a rule of g allowing the
// same traffic makes a new one on ifaces redundant.
func coversIfaces(g *rules.Group, ifaces []string) bool {
	return g.Interfaces == nil || slices.Equal(g.Interfaces, ifaces)
}
