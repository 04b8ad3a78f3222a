package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fwd-project/fwd/internal/types/direction"
	"gopkg.in/yaml.v3"
)

// This file holds the interfaces a group is attached to (the group's
// interfaces key): the patterns, how they match an interface name, and
// their decoding.
//
// A pattern is an interface name (eth1), or a name prefix followed by
// one wildcard at its end: eth* (shell style) or eth+ (iptables'
// spelling, the same meaning): every interface whose name starts with
// eth, eth itself included. A lone * matches every interface. A group
// without the key is attached to every interface.

// MaxIfaceLen is the longest interface name Linux allows (IFNAMSIZ-1).
const MaxIfaceLen = 15

// CheckIfacePattern reports whether s is an interface name or pattern a
// group may name: at most 15 bytes, no white space, '/' or ':', not "."
// or "..", and a wildcard ('*' or '+') only as its last character.
func CheckIfacePattern(s string) error {
	name := strings.TrimRight(s, "*+")
	switch {
	case s == "":
		return fmt.Errorf("interface name is empty: expected a name such as eth0, or a prefix and * such as eth*")
	case len(s)-len(name) > 1:
		return fmt.Errorf("interface %q: one wildcard at the end only, as in eth*", clip(s))
	case len(name) > MaxIfaceLen:
		return fmt.Errorf("interface %q is %d bytes long: Linux interface names have at most %d", clip(s), len(name), MaxIfaceLen)
	case name == "." || name == "..":
		return fmt.Errorf("interface %q: not an interface name", s)
	}
	for i, r := range name {
		switch {
		case r == '*' || r == '+':
			return fmt.Errorf("interface %q: wildcard %q at byte %d: a wildcard may only end the name, as in eth*", clip(s), r, i+1)
		case r <= ' ' || r == '/' || r == ':' || r >= 0x7f:
			return fmt.Errorf("interface %q: %q is not allowed in an interface name", clip(s), r)
		}
	}
	return nil
}

// IfaceMatch reports whether interface name matches pattern (see
// CheckIfacePattern).
func IfaceMatch(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	if p, ok := strings.CutSuffix(pattern, "+"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}

// AttachedTo reports whether the group applies to interface name: it
// names no interfaces (it is on all of them), or one of its patterns
// matches.
func (g *Group) AttachedTo(name string) bool {
	if g.Interfaces == nil {
		return true
	}
	return slices.ContainsFunc(g.Interfaces, func(p string) bool { return IfaceMatch(p, name) })
}

// HasInterfaces reports whether any group of f is attached to named
// interfaces only.
func (f *File) HasInterfaces() bool {
	return slices.ContainsFunc(f.Groups, func(g Group) bool { return g.Interfaces != nil })
}

// UnmatchedInterfaces returns the warnings for the interface patterns of
// f that match none of names (the host's interfaces now): a warning,
// not an error, as interfaces come and go.
func (f *File) UnmatchedInterfaces(names []string) []*Error {
	var out []*Error
	for gi := range f.Groups {
		g := &f.Groups[gi]
		for _, p := range g.Interfaces {
			if !slices.ContainsFunc(names, func(n string) bool { return IfaceMatch(p, n) }) {
				out = append(out, &Error{File: f.Path, Pos: g.IfacePos,
					Msg: fmt.Sprintf("group %s: interface %s matches no interface of this host (yet): the group applies once one appears", g.Name, p)})
			}
		}
	}
	return out
}

// interfaces decodes a group's interfaces key: a list of at least one
// pattern, no duplicates.
func (d *decoder) interfaces(n *yaml.Node) []string {
	items, ok := d.seq(n, "interfaces")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(n, "interfaces is empty: a group attached to no interface never applies; leave the key out to attach the group to every interface")
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		it = deref(it)
		s, ok := d.scalar(it, "interface", "an interface name such as eth0 or a pattern such as eth*")
		if !ok {
			continue
		}
		if err := CheckIfacePattern(s); err != nil {
			d.errorf(it, "%v", err)
			continue
		}
		if slices.Contains(out, s) {
			d.errorf(it, "duplicate interface %q", s)
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ErrNotAttached is returned by AddRulesOn for a group that exists but
// is not attached to exactly the interfaces asked for.
var ErrNotAttached = errors.New("group not attached to the interface")

// AddRulesOn is AddRules for rules that apply on some interfaces only
// (fwctl allow in on eth1 ...): a group it creates is attached to
// ifaces, and an existing group must already be attached to exactly
// ifaces (ErrNotAttached otherwise), so that the edit never allows
// traffic on another interface.
func AddRulesOn(name string, data []byte, group string, ifaces []string, dir direction.Dir, rs []Rule, opts Options) ([]byte, error) {
	if len(ifaces) == 0 {
		return nil, errors.New("no interfaces")
	}
	for _, p := range ifaces {
		if err := CheckIfacePattern(p); err != nil {
			return nil, err
		}
	}
	return addRules(name, data, group, ifaces, dir, rs, opts)
}

// checkAttached refuses, for an edit on ifaces, a group g (the group's
// node, nil when it is to be created) attached to other interfaces.
func checkAttached(g *yaml.Node, group string, ifaces []string) error {
	if ifaces == nil || g == nil {
		return nil
	}
	var have []string
	if n := mapValue(g, "interfaces"); n != nil && n.Kind == yaml.SequenceNode {
		for _, it := range n.Content {
			have = append(have, deref(it).Value)
		}
	}
	if !slices.Equal(have, ifaces) {
		on := "every interface"
		if have != nil {
			on = strings.Join(have, ", ")
		}
		return notAttached(fmt.Sprintf("group %q is attached to %s, not to %s: leave --group out for a group of that interface's own", group, on, strings.Join(ifaces, ", ")))
	}
	return nil
}

// notAttached is ErrNotAttached in words.
type notAttached string

func (e notAttached) Error() string        { return string(e) }
func (e notAttached) Is(target error) bool { return target == ErrNotAttached }

func ifaceList(ifaces []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, p := range ifaces {
		n.Content = append(n.Content, str(p))
	}
	return n
}
