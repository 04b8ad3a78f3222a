package fleet

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
)

// Snapshot is what one host enforces: the store's policy at Revision,
// narrowed to the groups assigned to Host, its group references resolved
// to the live members' addresses, and compiled.
type Snapshot struct {
	Revision int64
	Host     string
	// Groups are the groups assign/HOST names (what Select keeps).
	Groups []string
	// Policy is the whole policy as stored (every group and prefix list:
	// a selected group may reference any of them).
	Policy Policy
	// Members are the addresses of the live members of every group the
	// selected groups reference.
	Members map[string][]netip.Prefix
	// File is the resolved, selected rules file; its Hash is Hash(File).
	File *rules.File
	// Table is File compiled.
	Table *filter.Table
}

// Hash is the snapshot's fleet hash (Hash of its File).
func (s *Snapshot) Hash() string {
	if s == nil || s.File == nil {
		return ""
	}
	return s.File.Hash
}

// Resolve is the reference resolver: the policy p decoded, narrowed to
// groups and its references resolved with members, then hashed (the
// file's Hash is Hash of the result). An assigned group the policy does
// not define is an error: the host would enforce less than the admin
// meant.
func Resolve(p Policy, groups []string, members map[string][]netip.Prefix, opts rules.Options) (*rules.File, error) {
	full, err := p.File(opts)
	if err != nil {
		return nil, err
	}
	return resolveParsed(full, groups, members)
}

func resolveParsed(full *rules.File, groups []string, members map[string][]netip.Prefix) (*rules.File, error) {
	sel, err := full.Select(groups)
	if err != nil {
		return nil, fmt.Errorf("assigned: %w", err)
	}
	f := sel.ResolveGroups(func(g string) []netip.Prefix { return members[g] })
	f.Hash = Hash(f)
	return f, nil
}

// references lists the groups that f's rules reference, sorted.
func references(f *rules.File) []string {
	seen := map[string]bool{}
	for i := range f.Groups {
		g := &f.Groups[i]
		for _, rs := range [][]rules.Rule{g.Ingress, g.Egress} {
			for j := range rs {
				for _, ref := range rs[j].GroupRefs {
					seen[ref] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// builder turns the syncer's state into snapshots, parsing the policy
// again only when a policy key or this host's assignment changed, and
// building nothing when neither they nor the members of a referenced
// group changed (a change elsewhere in the fleet costs this host one
// pass over the hosts, no parse and no compile).
type builder struct {
	host string
	opts rules.Options
	now  func() time.Time
	// the last parse: the whole policy, this host's groups, what they
	// reference; full is nil when the policy must be parsed again.
	full    *rules.File
	groups  []string
	refs    []string
	closure map[string]bool
	policy  Policy // the closure's groups and every prefix list
	// last is the last snapshot built (valid or not, its inputs): a
	// build with the same inputs is skipped.
	lastMembers map[string][]netip.Prefix
	membersOf   []string // the refs lastMembers resolved
	built       bool
}

// build returns the snapshot of st, nil when nothing this host enforces
// changed, or the error that makes st's snapshot invalid. A snapshot
// whose hash is enforced's (the one in force means the same) is not
// compiled: its Table is nil.
func (b *builder) build(st *state, enforced string) (*Snapshot, error) {
	if !st.dirty {
		return nil, nil
	}
	st.dirty = false
	mine, err := b.assigned(st)
	if err != nil {
		b.full = nil
		return nil, err
	}
	if st.policyDirty {
		// A change outside this host's groups, and the groups they
		// reference changing their rules, change nothing here.
		if st.takePolicyChanges(b.groups, b.closure) {
			b.full = nil
		}
	}
	if b.full == nil || !slices.Equal(mine, b.groups) {
		if err := b.parse(st, mine); err != nil {
			return nil, err
		}
	}
	members := b.lastMembers
	if st.membersDirty || !slices.Equal(b.refs, b.membersOf) {
		// Membership is resolved again only when an assignment or a
		// presence changed, or the references did.
		if members, err = b.members(st); err != nil {
			return nil, err
		}
		st.membersDirty, b.membersOf = false, b.refs
		if b.built && membersEqual(members, b.lastMembers) {
			return nil, nil
		}
	} else if b.built {
		return nil, nil
	}
	f, err := resolveParsed(b.full, b.groups, members)
	if err != nil {
		return nil, err
	}
	var t *filter.Table
	if f.Hash != enforced {
		if t, err = filter.CompileAt(f, b.now()); err != nil {
			return nil, fmt.Errorf("compile: %w", err)
		}
	}
	b.lastMembers, b.built = members, true
	return &Snapshot{Revision: st.rev, Host: b.host, Groups: b.groups,
		Policy: b.policy, Members: members, File: f, Table: t}, nil
}

// parse decodes the whole policy and notes what this host's groups
// need: the groups they reference, and the closure (them and every group
// reachable by references), whose values with the prefix lists are the
// part of the policy a snapshot keeps.
func (b *builder) parse(st *state, mine []string) error {
	b.full, b.built = nil, false
	full, err := st.policy.File(b.opts)
	if err != nil {
		return err
	}
	sel, err := full.Select(mine)
	if err != nil {
		return fmt.Errorf("assigned: %w", err)
	}
	b.closure = closure(full, mine)
	b.policy = Policy{Groups: map[string][]byte{}, PrefixLists: maps.Clone(st.policy.PrefixLists)}
	for g := range b.closure {
		if v, ok := st.policy.Groups[g]; ok {
			b.policy.Groups[g] = v
		}
	}
	b.full, b.groups, b.refs = full, mine, references(sel)
	return nil
}

// closure is groups and every group reachable from them by references.
func closure(full *rules.File, groups []string) map[string]bool {
	out := map[string]bool{}
	todo := slices.Clone(groups)
	for len(todo) > 0 {
		g := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if out[g] {
			continue
		}
		out[g] = true
		if i := full.GroupIndex(g); i >= 0 {
			sel := &rules.File{Groups: full.Groups[i : i+1]}
			todo = append(todo, references(sel)...)
		}
	}
	return out
}

// assigned is this host's groups, sorted; no assign key means none.
func (b *builder) assigned(st *state) ([]string, error) {
	key := st.layout.Key(KindAssign, b.host)
	if err := st.errs[key]; err != nil {
		return nil, err
	}
	g := slices.Clone(st.assign[b.host])
	slices.Sort(g)
	return slices.Compact(g), nil
}

// members resolves the referenced groups: a host is a member of g when
// assign/HOST names g and hosts/HOST exists. A value that does not
// decode and could make a member is an error (which refuses the
// snapshot) rather than a guess.
func (b *builder) members(st *state) (map[string][]netip.Prefix, error) {
	out := make(map[string][]netip.Prefix, len(b.refs))
	if len(b.refs) == 0 {
		return out, nil
	}
	for _, g := range b.refs {
		out[g] = []netip.Prefix{}
	}
	for key, err := range st.errs {
		k, name := st.layout.Parse(key)
		if k == KindAssign {
			if _, alive := st.hosts[name]; alive {
				return nil, err
			}
		}
		if k == KindHost && b.referenced(st.assign[name]) {
			return nil, err
		}
	}
	for h, addrs := range st.hosts {
		for _, g := range st.assign[h] {
			if _, ok := out[g]; !ok {
				continue
			}
			for _, a := range addrs {
				out[g] = append(out[g], netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	for g, ps := range out {
		slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		out[g] = slices.Compact(ps)
	}
	return out, nil
}

func (b *builder) referenced(groups []string) bool {
	for _, g := range groups {
		if _, ok := slices.BinarySearch(b.refs, g); ok {
			return true
		}
	}
	return false
}

func membersEqual(a, b map[string][]netip.Prefix) bool {
	return maps.EqualFunc(a, b, slices.Equal)
}
