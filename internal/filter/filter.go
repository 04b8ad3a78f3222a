// Package filter compiles a validated rules file into an immutable lookup
// table and answers, for the first packet of a connection, whether the
// security groups allow it and which rule did.
//
// A Table is built once by Compile and never changes: it is safe for any
// number of concurrent readers without locks, and Match allocates nothing.
// A reload builds a new Table and swaps a pointer.
//
// The table is indexed by direction and protocol. For each (direction,
// protocol) it holds a longest-prefix-match trie (gaissmai/bart) over every
// distinct peer prefix of the rules; the value stored at a prefix is a
// piecewise-constant map from destination port (or ICMP type<<8|code) to
// the first rule allowing it, already merged with everything the prefix's
// supernets allow. A lookup is therefore one trie walk and one binary
// search, whatever the number of rules.
package filter

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/fwd-project/fwd/internal/rules"

	"github.com/gaissmai/bart"
)

// Table is a compiled, immutable rule table. The zero value drops
// everything.
type Table struct {
	dirs [2]dirTable
	// entries maps an ordinal (1-based; 0 means no rule) to its rule.
	entries []entry
	file    *rules.File
	stats   Stats
}

type dirTable struct {
	byProto [256]*protoTable
}

// protoTable answers for one direction and protocol.
type protoTable struct {
	trie *bart.Table[*portMap]
}

// portMap is a piecewise-constant function over 0..65535: ords[i] holds
// for starts[i] <= x < starts[i+1]. starts[0] is always 0.
type portMap struct {
	starts []uint16
	ords   []uint32
}

type entry struct {
	group int32
	rule  int32 // NoRule for a group's implicit egress default
	dir   Dir
}

// Stats describes a compiled table.
type Stats struct {
	Rules     int // rules in the file, plus one per implicit egress default
	Prefixes  int // distinct (direction, protocol, prefix) entries in the tries
	Intervals int // port intervals over all distinct port maps
	PortMaps  int // distinct port maps (identical ones are shared)
}

// Stats returns figures about the table's size.
func (t *Table) Stats() Stats { return t.stats }

// File returns the rules file the table was compiled from.
func (t *Table) File() *rules.File { return t.file }

// Match answers whether the security groups allow a new connection. It
// allocates nothing and takes no lock.
func (t *Table) Match(k Key) Verdict {
	pt := t.dirs[k.Dir&1].byProto[k.Proto]
	if pt == nil {
		return Verdict{Dir: k.Dir, Group: -1, Rule: NoRule}
	}
	pm, ok := pt.trie.Lookup(k.Peer)
	if !ok {
		return Verdict{Dir: k.Dir, Group: -1, Rule: NoRule}
	}
	x := k.Port
	if k.Proto == ProtoICMP || k.Proto == ProtoICMPv6 {
		x = uint16(k.Type)<<8 | uint16(k.Code)
	}
	ord := pm.lookup(x)
	if ord == 0 {
		return Verdict{Dir: k.Dir, Group: -1, Rule: NoRule}
	}
	e := &t.entries[ord]
	return Verdict{Accept: true, Dir: k.Dir, Group: e.group, Rule: e.rule}
}

// lookup finds the value at x: the last start <= x.
func (m *portMap) lookup(x uint16) uint32 {
	s := m.starts
	lo, hi := 0, len(s) // invariant: s[lo] <= x, answer in [lo, hi)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if s[mid] <= x {
			lo = mid
		} else {
			hi = mid
		}
	}
	return m.ords[lo]
}

// GroupName returns the name of group i, or "" when out of range.
func (t *Table) GroupName(i int32) string {
	if t.file == nil || i < 0 || int(i) >= len(t.file.Groups) {
		return ""
	}
	return t.file.Groups[i].Name
}

// Rule returns the rule a verdict names, or nil for a drop or an implicit
// egress default.
func (t *Table) Rule(v Verdict) *rules.Rule {
	if !v.Accept || v.Rule < 0 || t.file == nil || v.Group < 0 || int(v.Group) >= len(t.file.Groups) {
		return nil
	}
	g := &t.file.Groups[v.Group]
	list := g.Ingress
	if v.Dir == Egress {
		list = g.Egress
	}
	if int(v.Rule) >= len(list) {
		return nil
	}
	return &list[v.Rule]
}

// Describe puts a verdict in words, e.g. "accepted by group web, ingress
// rule 0 (tcp 80,443 from any)".
func (t *Table) Describe(v Verdict) string {
	if !v.Accept {
		if v.Dir == Egress {
			return "dropped: no egress rule allows it"
		}
		return "dropped: no ingress rule allows it"
	}
	name := t.GroupName(v.Group)
	if v.Rule == NoRule {
		return fmt.Sprintf("accepted by group %s, its default egress rule (egress omitted: all outbound allowed)", name)
	}
	r := t.Rule(v)
	if r == nil {
		return fmt.Sprintf("accepted by group %s, rule %d", name, v.Rule)
	}
	word, list := "from", "ingress"
	if v.Dir == Egress {
		word, list = "to", "egress"
	}
	s := fmt.Sprintf("accepted by group %s, %s rule %d (%s)", name, list, v.Rule, r.Format(word))
	if r.Description != "" {
		s += ": " + r.Description
	}
	return s
}

// Compile builds the lookup table for a validated rules file.
func Compile(f *rules.File) (*Table, error) {
	if f == nil {
		return nil, fmt.Errorf("compile: no rules file")
	}
	t := &Table{file: f, entries: []entry{{}}}
	var srcs [2][]source
	for gi := range f.Groups {
		g := &f.Groups[gi]
		for ri := range g.Ingress {
			srcs[Ingress] = append(srcs[Ingress], t.source(&g.Ingress[ri], int32(gi), int32(ri), Ingress))
		}
		if g.EgressOmitted {
			// AWS's default egress rule: all protocols to anywhere.
			t.entries = append(t.entries, entry{group: int32(gi), rule: NoRule, dir: Egress})
			srcs[Egress] = append(srcs[Egress], source{
				all:      true,
				ranges:   []rules.PortRange{{Lo: 0, Hi: 65535}},
				prefixes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
				ord:      uint32(len(t.entries) - 1),
			})
		}
		for ri := range g.Egress {
			srcs[Egress] = append(srcs[Egress], t.source(&g.Egress[ri], int32(gi), int32(ri), Egress))
		}
	}
	if len(t.entries) > 1<<31 {
		return nil, fmt.Errorf("compile: %d rules is too many", len(t.entries)-1)
	}
	t.stats.Rules = len(t.entries) - 1
	c := compiler{shared: map[string]*portMap{}}
	for dir := range srcs {
		t.dirs[dir] = c.dir(srcs[dir])
	}
	t.stats.Prefixes = c.prefixes
	t.stats.PortMaps = len(c.shared)
	for _, pm := range c.shared {
		t.stats.Intervals += len(pm.starts)
	}
	return t, nil
}

// source is one rule reduced to what the table needs.
type source struct {
	all      bool  // every protocol
	proto    uint8 // when !all
	ranges   []rules.PortRange
	prefixes []netip.Prefix
	ord      uint32
}

func (t *Table) source(r *rules.Rule, g, i int32, dir Dir) source {
	t.entries = append(t.entries, entry{group: g, rule: i, dir: dir})
	s := source{all: r.Proto.All, proto: r.Proto.Num, prefixes: r.Prefixes, ord: uint32(len(t.entries) - 1)}
	switch {
	case r.Proto.HasPorts() && len(r.Ports) > 0:
		s.ranges = r.Ports
	case r.Proto.IsICMP() && r.ICMP != nil:
		lo := uint16(r.ICMP.Type) << 8
		if r.ICMP.AnyCode {
			s.ranges = []rules.PortRange{{Lo: lo, Hi: lo | 0xff}}
		} else {
			s.ranges = []rules.PortRange{{Lo: lo | uint16(r.ICMP.Code), Hi: lo | uint16(r.ICMP.Code)}}
		}
	default:
		s.ranges = []rules.PortRange{{Lo: 0, Hi: 65535}}
	}
	return s
}

type compiler struct {
	// shared holds every distinct port map, so identical ones are stored once.
	shared   map[string]*portMap
	prefixes int
}

// piece is one rule's contribution at one prefix.
type piece struct {
	lo, hi uint16
	ord    uint32
}

func (c *compiler) dir(srcs []source) dirTable {
	var dt dirTable
	var named [256]bool
	hasAll := false
	for i := range srcs {
		if srcs[i].all {
			hasAll = true
		} else {
			named[srcs[i].proto] = true
		}
	}
	var allOnly *protoTable
	if hasAll {
		allOnly = c.proto(srcs, -1)
	}
	for p := range dt.byProto {
		if named[p] {
			dt.byProto[p] = c.proto(srcs, p)
		} else {
			dt.byProto[p] = allOnly
		}
	}
	return dt
}

// proto builds the table for one protocol number, or for the protocols no
// rule names (proto < 0: only "all" rules apply).
func (c *compiler) proto(srcs []source, proto int) *protoTable {
	own := map[netip.Prefix][]piece{}
	for i := range srcs {
		s := &srcs[i]
		if !s.all && int(s.proto) != proto {
			continue
		}
		for _, p := range s.prefixes {
			for _, r := range s.ranges {
				own[p] = append(own[p], piece{lo: r.Lo, hi: r.Hi, ord: s.ord})
			}
		}
	}
	pfxs := make([]netip.Prefix, 0, len(own))
	for p := range own {
		pfxs = append(pfxs, p)
	}
	// Supernets first, so that a prefix's nearest supernet is already in
	// the trie (with its merged map) when the prefix is reached.
	slices.SortFunc(pfxs, func(a, b netip.Prefix) int {
		if c := cmp.Compare(a.Bits(), b.Bits()); c != 0 {
			return c
		}
		return a.Addr().Compare(b.Addr())
	})
	trie := new(bart.Table[*portMap])
	for _, p := range pfxs {
		parent, _ := trie.Lookup(p.Addr()) // longest already-inserted supernet
		if p.Bits() == 0 {
			parent = nil // nothing is shorter than /0
		}
		trie.Insert(p, c.intern(merge(parent, own[p])))
	}
	c.prefixes += len(pfxs)
	return &protoTable{trie: trie}
}

// merge returns the pointwise minimum (first rule wins; 0 means none) of a
// supernet's map and a prefix's own pieces.
func merge(parent *portMap, own []piece) portMap {
	cuts := []uint16{0}
	if parent != nil {
		cuts = append(cuts, parent.starts...)
	}
	for _, p := range own {
		cuts = append(cuts, p.lo)
		if p.hi < 65535 {
			cuts = append(cuts, p.hi+1)
		}
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	vals := make([]uint32, len(cuts))
	for i, x := range cuts {
		if parent != nil {
			vals[i] = parent.lookup(x)
		}
	}
	for _, p := range own {
		i, _ := slices.BinarySearch(cuts, p.lo)
		for ; i < len(cuts) && cuts[i] <= p.hi; i++ {
			if vals[i] == 0 || p.ord < vals[i] {
				vals[i] = p.ord
			}
		}
	}
	// Join neighbours that say the same.
	out := portMap{starts: cuts[:0:0], ords: vals[:0:0]}
	for i := range cuts {
		if i > 0 && vals[i] == vals[i-1] {
			continue
		}
		out.starts = append(out.starts, cuts[i])
		out.ords = append(out.ords, vals[i])
	}
	return out
}

// intern returns the shared copy of a port map.
func (c *compiler) intern(m portMap) *portMap {
	key := make([]byte, 0, 6*len(m.starts))
	for i := range m.starts {
		key = binary.LittleEndian.AppendUint16(key, m.starts[i])
		key = binary.LittleEndian.AppendUint32(key, m.ords[i])
	}
	k := string(key)
	if pm, ok := c.shared[k]; ok {
		return pm
	}
	pm := &portMap{starts: slices.Clip(m.starts), ords: slices.Clip(m.ords)}
	c.shared[k] = pm
	return pm
}
