package filter

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/fwd-project/fwd/internal/rules"
)

// This file holds groups attached to interfaces (the interfaces key).
//
// Which groups decide a packet depends on its interface: ingress on the
// one it came in on, egress on the one it leaves by. An interface's
// groups are those attached to every interface plus those with a
// pattern matching its name. Interface names are not known when the
// table is compiled (interfaces come and go), but the sets of groups a
// name can select are: a name selects the exact patterns equal to it and
// the wildcard patterns whose prefix starts it, so every selectable set
// is the set of one of these names: each exact pattern, each wildcard's
// prefix followed by a byte no interface name holds, and a name that no
// pattern names. Compile builds one index ("view") per distinct set, as
// it builds the whole table when no group names an interface, so "the
// first rule that matches" keeps its meaning within the interface's
// groups.
//
// At run time Key.Ifindex picks the view through a small sorted map
// ifindex → view that Bind publishes with one atomic store: the hot path
// reads it without a lock and allocates nothing. A Table whose groups
// name no interface has no views and ignores Key.Ifindex.

// Link is one network interface of the host: its index and name.
type Link struct {
	Index uint32
	Name  string
}

// ifaceIndex is the per-interface part of a table.
type ifaceIndex struct {
	// views are the indexes of the distinct group sets; views[0] is that
	// of an interface no pattern names (or an unknown ifindex).
	views [][2]dirTable
	// sets are the group sets of the views, one byte per group (1:
	// attached), as strings to compare.
	sets  []string
	bound atomic.Pointer[[]uint64] // sorted ifindex<<32 | view
}

// groupSet is the set of f's groups attached to interface name.
func groupSet(f *rules.File, name string) string {
	b := make([]byte, len(f.Groups))
	for i := range f.Groups {
		if f.Groups[i].AttachedTo(name) {
			b[i] = 1
		}
	}
	return string(b)
}

// candidateNames are names that select every group set a name can.
func candidateNames(f *rules.File) []string {
	names := []string{""} // no pattern names it (patterns are never empty)
	for gi := range f.Groups {
		for _, p := range f.Groups[gi].Interfaces {
			if pre, ok := strings.CutSuffix(p, "*"); ok {
				p = pre + "\x00"
			} else if pre, ok := strings.CutSuffix(p, "+"); ok {
				p = pre + "\x00"
			}
			names = append(names, p)
		}
	}
	return names
}

// compileViews builds the views of a file some of whose groups name
// interfaces; srcs are every rule's sources per direction.
func (c *compiler) compileViews(f *rules.File, srcs [2][]source) *ifaceIndex {
	ix := &ifaceIndex{}
	c.shareProtos = map[string]*protoTable{}
	for _, name := range candidateNames(f) {
		set := groupSet(f, name)
		if slices.Contains(ix.sets, set) {
			continue
		}
		var v [2]dirTable
		for dir := range srcs {
			var keep []source
			for _, s := range srcs[dir] {
				if set[c.entries[s.ord].group] == 1 {
					keep = append(keep, s)
				}
			}
			v[dir] = c.dir(keep)
		}
		ix.sets = append(ix.sets, set)
		ix.views = append(ix.views, v)
	}
	return ix
}

// protoKey names the rules a protoTable is built from, so that views
// with the same rules for a protocol share one.
func protoKey(srcs []source, proto int) string {
	b := binary.AppendVarint(nil, int64(proto))
	for i := range srcs {
		if srcs[i].all || int(srcs[i].proto) == proto {
			b = binary.AppendUvarint(b, uint64(srcs[i].ord))
		}
	}
	return string(b)
}

// Views is the number of per-interface indexes: 0 when no group names
// an interface.
func (t *Table) Views() int {
	if t.iface == nil {
		return 0
	}
	return len(t.iface.views)
}

// HasInterfaces reports whether some group of the table is attached to
// named interfaces only, so that Key.Ifindex matters and Bind is needed.
func (t *Table) HasInterfaces() bool { return t.iface != nil }

// viewOf returns the view of interface name.
func (ix *ifaceIndex) viewOf(f *rules.File, name string) int {
	return max(0, slices.Index(ix.sets, groupSet(f, name)))
}

// Bind tells the table the host's interfaces, so that Match can resolve
// Key.Ifindex; an index not among links is an interface no pattern
// names. It may be called at any time, also while Match runs on other
// goroutines (the map is replaced with one atomic store), and does
// nothing on a table whose groups name no interface.
func (t *Table) Bind(links []Link) {
	if t.iface == nil {
		return
	}
	m := make([]uint64, 0, len(links))
	for _, l := range links {
		if v := t.iface.viewOf(t.file, l.Name); v != 0 {
			m = append(m, uint64(l.Index)<<32|uint64(v))
		}
	}
	slices.SortFunc(m, func(a, b uint64) int { return cmp.Compare(a, b) })
	t.iface.bound.Store(&m)
}

// Groups returns the indexes of the groups that decide traffic on
// interface name, in file order.
func (t *Table) Groups(name string) []int {
	var out []int
	if t.file == nil {
		return nil
	}
	for i := range t.file.Groups {
		if t.file.Groups[i].AttachedTo(name) {
			out = append(out, i)
		}
	}
	return out
}

// dirs returns the index for k's interface and direction.
func (ix *ifaceIndex) dirs(k Key) *dirTable {
	return &ix.views[ix.view(k)][k.Dir&1]
}

// view is the view of k's interface.
func (ix *ifaceIndex) view(k Key) int {
	v := 0
	if p := ix.bound.Load(); p != nil && k.Ifindex != 0 {
		m := *p
		lo, hi := 0, len(m)
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if uint32(m[mid]>>32) < k.Ifindex {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo < len(m) && uint32(m[lo]>>32) == k.Ifindex {
			v = int(uint32(m[lo]))
		}
	}
	return v
}

// OnIfindex is the interface index Key.Ifindex carries for the table On
// returns.
const OnIfindex = 1<<32 - 1

// On returns a table that answers as t does for a packet on interface
// name whose Key.Ifindex is OnIfindex: a copy sharing t's indexes, with
// a binding of its own, so that a question about one interface (fwctl
// check ... on eth1, replay --iface) never touches the binding of the
// live table. A t whose groups name no interface is returned as is.
func (t *Table) On(name string) *Table {
	if t.iface == nil {
		return t
	}
	c := *t
	c.iface = &ifaceIndex{views: t.iface.views, sets: t.iface.sets}
	c.Bind([]Link{{Index: OnIfindex, Name: name}})
	return &c
}
