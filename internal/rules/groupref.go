package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// GroupRefPrefix starts a peer word that names a security group rather
// than addresses: "group:web" means the addresses of the hosts that are
// members of group web (AWS's referenced security group).
const GroupRefPrefix = "group:"

// GroupRef reports whether the peer word s is a group reference, and the
// group it names.
func GroupRef(s string) (name string, ok bool) {
	return strings.CutPrefix(s, GroupRefPrefix)
}

// groupRefsOf lists the groups that peers, as written, reference, each
// once, in the order first written; nil when none.
func groupRefsOf(peers []string) []string {
	var out []string
	for _, p := range peers {
		if name, ok := GroupRef(p); ok && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// groupRefAt is a reference as the decoder met it, checked once every
// group of the file is known (a group may reference one defined after it,
// or itself).
type groupRefAt struct {
	name string
	node *yaml.Node
}

// groupRef reads the peer word s when it is a group reference: it is
// recorded for checkGroupRefs and true is returned.
func (d *decoder) groupRef(n *yaml.Node, s string) bool {
	name, ok := GroupRef(s)
	if !ok {
		return false
	}
	if name == "" {
		d.errorf(n, "group reference %q names no group: expected group:NAME, such as group:web", s)
		return true
	}
	d.refs = append(d.refs, groupRefAt{name: name, node: n})
	return true
}

// checkGroupRefs refuses references to groups the file does not define.
func (d *decoder) checkGroupRefs(groups []Group) {
	for _, r := range d.refs {
		if !slices.ContainsFunc(groups, func(g Group) bool { return g.Name == r.name }) {
			d.errorf(r.node, "undefined group %q: a group reference names a group of this policy (groups: - name: %s)", r.name, r.name)
		}
	}
}

// ResolveRulePeers fills r.Prefixes and r.GroupRefs from r.Peers as the
// decoder does for a group's rule: addresses, prefix lists and any
// resolve to prefixes, group:NAME must name a group of f.
func (f *File) ResolveRulePeers(r *Rule) error {
	var addrs []string
	for _, p := range r.Peers {
		name, ok := GroupRef(p)
		if !ok {
			addrs = append(addrs, p)
			continue
		}
		if !slices.ContainsFunc(f.Groups, func(g Group) bool { return g.Name == name }) {
			return fmt.Errorf("undefined group %q in %q: a group reference names a group of the rules file", name, p)
		}
	}
	prefixes, err := f.ResolvePeers(addrs)
	if err != nil {
		return err
	}
	r.Prefixes, r.GroupRefs = prefixes, groupRefsOf(r.Peers)
	return nil
}

// HasGroupRefs reports whether any rule of f references a group.
func (f *File) HasGroupRefs() bool {
	for gi := range f.Groups {
		g := &f.Groups[gi]
		for _, rs := range [][]Rule{g.Ingress, g.Egress} {
			for ri := range rs {
				if len(rs[ri].GroupRefs) > 0 {
					return true
				}
			}
		}
	}
	return false
}

// ResolveGroups returns a copy of f in which every rule that references
// groups holds, in Members, members(name) for each group it names
// (canonical, deduplicated, in order). A rule whose peers are only
// references to groups with no member matches nothing. f is unchanged.
func (f *File) ResolveGroups(members func(group string) []netip.Prefix) *File {
	out := *f
	out.GroupsResolved = true
	out.Groups = slices.Clone(f.Groups)
	for gi := range out.Groups {
		g := &out.Groups[gi]
		g.Ingress = resolveRules(g.Ingress, members)
		g.Egress = resolveRules(g.Egress, members)
	}
	return &out
}

func resolveRules(rs []Rule, members func(string) []netip.Prefix) []Rule {
	out := slices.Clone(rs)
	for i := range out {
		r := &out[i]
		r.Members = nil
		// seen keeps the deduplication linear: a fleet group has
		// hundreds of members.
		var seen map[netip.Prefix]bool
		for _, name := range r.GroupRefs {
			ms := members(name)
			if seen == nil {
				seen = make(map[netip.Prefix]bool, len(ms))
			}
			for _, p := range ms {
				p = p.Masked()
				if p.IsValid() && !seen[p] {
					seen[p] = true
					r.Members = append(r.Members, p)
				}
			}
		}
	}
	return out
}

// Select returns a copy of f holding only the named groups, in f's order
// (a fleet host's table holds the groups assigned to it); the prefix
// lists, the acl and the failsafe stay. A name f does not define is an
// error.
func (f *File) Select(groups []string) (*File, error) {
	for _, name := range groups {
		if !slices.ContainsFunc(f.Groups, func(g Group) bool { return g.Name == name }) {
			return nil, fmt.Errorf("no group %q in the policy", name)
		}
	}
	out := *f
	out.Groups = nil
	for _, g := range f.Groups {
		if slices.Contains(groups, g.Name) {
			out.Groups = append(out.Groups, g)
		}
	}
	return &out, nil
}

// HostPrefixes turns addresses into single-address prefixes (a /32 or a
// /128), the members a group reference resolves to.
func HostPrefixes(addrs []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}
