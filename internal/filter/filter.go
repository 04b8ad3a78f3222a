// Package filter compiles a validated rules file into an immutable lookup
// table and answers, for the first packet of a connection, whether the
// security groups allow it and which rule did.
//
// A Table is built once by Compile and never changes: it is safe for any
// number of concurrent readers without locks, and Match allocates nothing.
// A reload builds a new Table and swaps a pointer.
//
// The table is indexed by direction and protocol. For each (direction,
// protocol) it holds a longest-prefix-match index over every distinct peer
// prefix of the rules (an array indexed by the first 16 bits for IPv4,
// sorted address ranges for IPv6); the value stored at a prefix is a
// piecewise-constant map from destination port (or ICMP type<<8|code) to
// the first rule allowing it, already merged with everything the prefix's
// supernets allow. A lookup is therefore one prefix lookup and one binary
// search, whatever the number of rules.
package filter

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"

	"github.com/gaissmai/bart"
)

// Table is a compiled, immutable rule table. The zero value drops
// everything.
type Table struct {
	dirs [2]dirTable
	// ranges holds, for the /16s of IPv4 space that prefixes longer than
	// /16 divide, which port map holds from which address on: start<<48 |
	// map reference, sorted.
	ranges []uint64
	// pieces holds every distinct port map: a sorted run of start<<48 |
	// (group+1)<<32 | rule (0 below the start bits: no rule), the first
	// start 0. The run of map reference r is
	// pieces[r>>16 : r>>16 + r&0xffff + 1]; reference 0 is a map that
	// answers "no rule" everywhere.
	pieces []uint64
	file   *rules.File
	stats  Stats
	// slots numbers every rule, and every implicit egress default, so that
	// callers can count per rule in a flat array (see Slot).
	slots    []groupSlots
	numSlots int
}

type groupSlots struct {
	in, out, def int32 // first ingress slot, first egress slot, implicit egress slot (-1: none)
}

type dirTable struct {
	byProto [256]*protoTable
}

// protoTable answers for one direction and protocol which port map holds
// for a peer address.
type protoTable struct {
	// l1 is indexed by an IPv4 address's first 16 bits. An entry is a map
	// reference, or with rangeFlag set the run of t.ranges that splits the
	// /16 (same encoding as a map reference). nil when no IPv4 prefix.
	l1 []uint64
	v6 v6Index
}

// v6Index is IPv6 space cut into ranges at every prefix's first and
// one-past-last address; range i starts at (hi[i], lo[i]) and has the map
// reference ref[i] of the longest prefix covering it. A lookup finds the
// last start at or below the address.
//
// Rule sets share a common prefix (an organisation's /32 or /48), so when
// there are many ranges, first indexes the 16 address bits after the
// longest prefix common to every start but the first (bits [shift,
// shift+16) counted from the top): the answer for an address whose top
// bits equal common lies in [first[b]-1, first[b+1]) for its bucket b.
type v6Index struct {
	hi, lo, ref []uint64
	first       []uint32 // 65537 entries, or nil
	commonHi    uint64   // the common prefix, as the top bits of hi:lo
	commonLo    uint64
	shift       uint // length of the common prefix, at most 112
}

func (x *v6Index) lookup(a [16]byte) uint64 {
	n := len(x.hi)
	if n == 0 {
		return 0
	}
	ah, al := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	base := 0
	if x.first != nil {
		// Outside the common prefix only ::/0 can cover an address (any
		// other prefix there would have cut the space), and the first
		// range has ::/0's map.
		if th, tl := shr128(ah, al, 128-x.shift); th != x.commonHi || tl != x.commonLo {
			return x.ref[0]
		}
		_, b := shr128(ah, al, 112-x.shift)
		b &= 0xffff
		base = int(x.first[b]) - 1
		n = int(x.first[b+1]) - base
	}
	hs, ls, rs := x.hi[base:base+n], x.lo[base:base+n], x.ref[base:base+n]
	// Branch-free binary search: a mispredicted branch per step would cost
	// more than the memory reads.
	i := 0
	for n > 1 {
		half := n >> 1
		_, borrow := bits.Sub64(al, ls[i+half], 0)
		_, borrow = bits.Sub64(ah, hs[i+half], borrow)
		i += half &^ -int(borrow) // start <= a when no borrow
		n -= half
	}
	return rs[i]
}

// shr128 shifts hi:lo right by s bits (0 <= s <= 128).
func shr128(hi, lo uint64, s uint) (uint64, uint64) {
	switch {
	case s >= 128:
		return 0, 0
	case s >= 64:
		return 0, hi >> (s - 64)
	case s == 0:
		return hi, lo
	}
	return hi >> s, lo>>s | hi<<(64-s)
}

const (
	rangeFlag = 1 << 63
	refMask   = 1<<48 - 1
)

// search returns the last element of run whose top 16 bits are <= x; the
// first element's are 0.
func search(run []uint64, x uint16) uint64 {
	key := uint64(x)<<48 | refMask
	base, n := 0, len(run)
	for n > 1 {
		// Branch-free, as in v6Index.lookup: run[i] <= key when
		// key - run[i] does not borrow.
		half := n >> 1
		_, borrow := bits.Sub64(key, run[base+half], 0)
		base += half &^ -int(borrow)
		n -= half
	}
	return run[base]
}

func run(arena []uint64, ref uint64) []uint64 {
	off := ref >> 16 & (1<<32 - 1)
	return arena[off : off+ref&0xffff+1]
}

type entry struct {
	group int32
	rule  int32 // NoRule for a group's implicit egress default
	dir   direction.Dir
}

// Stats describes a compiled table.
type Stats struct {
	Rules     int // rules in the file, plus one per implicit egress default
	Prefixes  int // distinct (direction, protocol, prefix) entries
	Intervals int // port intervals over all distinct port maps
	PortMaps  int // distinct port maps (identical ones are shared)
	V4Ranges  int // address ranges inside IPv4 /16s split by longer prefixes
}

// Stats returns figures about the table's size.
func (t *Table) Stats() Stats { return t.stats }

// File returns the rules file the table was compiled from.
func (t *Table) File() *rules.File { return t.file }

// Match answers whether the security groups allow a new connection. It
// allocates nothing and takes no lock.
func (t *Table) Match(k Key) Result {
	pt := t.dirs[k.Dir&1].byProto[k.Proto]
	if pt == nil {
		return Result{Dir: k.Dir, Group: -1, Rule: NoRule}
	}
	var ref uint64
	if k.Peer.Is4() {
		if pt.l1 == nil {
			return Result{Dir: k.Dir, Group: -1, Rule: NoRule}
		}
		a := k.Peer.As4()
		ref = pt.l1[uint32(a[0])<<8|uint32(a[1])]
		if ref&rangeFlag != 0 {
			ref = search(run(t.ranges, ref), uint16(a[2])<<8|uint16(a[3])) & refMask
		}
	} else if k.Peer.Is6() {
		ref = pt.v6.lookup(k.Peer.As16())
	}
	x := k.Port
	if k.Proto == ipproto.ICMP || k.Proto == ipproto.ICMPv6 {
		x = uint16(k.Type)<<8 | uint16(k.Code)
	}
	v := search(run(t.pieces, ref), x)
	g := int32(v>>32&0xffff) - 1
	if g < 0 {
		return Result{Dir: k.Dir, Group: -1, Rule: NoRule}
	}
	return Result{Verdict: verdict.Accept, Dir: k.Dir, Group: g, Rule: int32(uint32(v))}
}

// NumSlots is the number of rule slots: one per rule of the file, plus
// one per implicit egress default.
func (t *Table) NumSlots() int { return t.numSlots }

// Slot returns the slot in [0, NumSlots) of the rule an accept verdict
// names, or -1 for a drop. It allocates nothing, so the hot path can count
// per rule.
func (t *Table) Slot(v Result) int {
	if !v.Accepted() || v.Group < 0 || int(v.Group) >= len(t.slots) {
		return -1
	}
	g := t.slots[v.Group]
	switch {
	case v.Rule == NoRule:
		return int(g.def)
	case v.Dir == direction.Egress:
		return int(g.out + v.Rule)
	}
	return int(g.in + v.Rule)
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
func (t *Table) Rule(v Result) *rules.Rule {
	if !v.Accepted() || v.Rule < 0 || t.file == nil || v.Group < 0 || int(v.Group) >= len(t.file.Groups) {
		return nil
	}
	g := &t.file.Groups[v.Group]
	list := g.Ingress
	if v.Dir == direction.Egress {
		list = g.Egress
	}
	if int(v.Rule) >= len(list) {
		return nil
	}
	return &list[v.Rule]
}

// Describe puts a verdict in words, e.g. "accepted by group web, ingress
// rule 0 (tcp 80,443 from any)".
func (t *Table) Describe(v Result) string {
	if !v.Accepted() {
		if v.Dir == direction.Egress {
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
	s := fmt.Sprintf("accepted by group %s, %s rule %d (%s)", name, v.Dir.Key(), v.Rule, r.Format(v.Dir))
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
	if len(f.Groups) >= 1<<16-1 {
		return nil, fmt.Errorf("compile: %d groups is too many: at most %d", len(f.Groups), 1<<16-2)
	}
	t := &Table{file: f, slots: make([]groupSlots, len(f.Groups))}
	for gi := range f.Groups {
		g := &f.Groups[gi]
		sl := groupSlots{in: int32(t.numSlots), out: int32(t.numSlots + len(g.Ingress)), def: -1}
		t.numSlots += len(g.Ingress) + len(g.Egress)
		if g.EgressOmitted {
			sl.def = int32(t.numSlots)
			t.numSlots++
		}
		t.slots[gi] = sl
	}
	c := compiler{shared: map[string]*portMap{}, pieces: []uint64{0}, entries: []entry{{}}} // reference 0: no rule
	var srcs [2][]source
	for gi := range f.Groups {
		g := &f.Groups[gi]
		for ri := range g.Ingress {
			srcs[direction.Ingress] = append(srcs[direction.Ingress], c.source(&g.Ingress[ri], int32(gi), int32(ri), direction.Ingress))
		}
		if g.EgressOmitted {
			// AWS's default egress rule: all protocols to anywhere.
			c.entries = append(c.entries, entry{group: int32(gi), rule: NoRule, dir: direction.Egress})
			srcs[direction.Egress] = append(srcs[direction.Egress], source{
				all:      true,
				ranges:   []rules.PortRange{{Lo: 0, Hi: 65535}},
				prefixes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
				ord:      uint32(len(c.entries) - 1),
			})
		}
		for ri := range g.Egress {
			srcs[direction.Egress] = append(srcs[direction.Egress], c.source(&g.Egress[ri], int32(gi), int32(ri), direction.Egress))
		}
	}
	if len(c.entries) > 1<<31 {
		return nil, fmt.Errorf("compile: %d rules is too many", len(c.entries)-1)
	}
	t.stats.Rules = len(c.entries) - 1
	for dir := range srcs {
		t.dirs[dir] = c.dir(srcs[dir])
	}
	if len(c.pieces) >= 1<<32 || len(c.ranges) >= 1<<32 {
		return nil, fmt.Errorf("compile: table too large")
	}
	t.pieces, t.ranges = slices.Clip(c.pieces), slices.Clip(c.ranges)
	t.stats.Prefixes = c.prefixes
	t.stats.PortMaps = len(c.shared)
	t.stats.Intervals = len(t.pieces) - 1
	t.stats.V4Ranges = len(t.ranges)
	return t, nil
}

// source is one rule reduced to what the table needs.
type source struct {
	all      bool          // every protocol
	proto    ipproto.Proto // when !all
	ranges   []rules.PortRange
	prefixes []netip.Prefix
	ord      uint32
}

func (c *compiler) source(r *rules.Rule, g, i int32, dir direction.Dir) source {
	c.entries = append(c.entries, entry{group: g, rule: i, dir: dir})
	s := source{all: r.Proto.All, proto: r.Proto.Num, prefixes: r.Prefixes, ord: uint32(len(c.entries) - 1)}
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

// portMap is a port map while compiling; ref is its reference in
// Table.pieces.
type portMap struct {
	starts []uint16
	ords   []uint32
	ref    uint64
}

func (m *portMap) lookup(x uint16) uint32 {
	i, found := slices.BinarySearch(m.starts, x)
	if !found {
		i--
	}
	return m.ords[i]
}

type compiler struct {
	// shared holds every distinct port map, so identical ones are stored once.
	shared map[string]*portMap
	// entries maps an ordinal (1-based, in file order; 0 means no rule)
	// to its rule. The first rule in file order wins.
	entries  []entry
	pieces   []uint64
	ranges   []uint64
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
	// During the build a trie finds each prefix's nearest supernet.
	build := new(bart.Table[*portMap])
	pt := &protoTable{}
	var v4, v6 []netip.Prefix
	for _, p := range pfxs {
		parent, _ := build.Lookup(p.Addr()) // longest already-inserted supernet
		pm := c.intern(merge(parent, own[p]))
		build.Insert(p, pm)
		if p.Addr().Is4() {
			v4 = append(v4, p)
			continue
		}
		v6 = append(v6, p)
	}
	c.prefixes += len(pfxs)
	if len(v4) > 0 {
		pt.l1 = c.paint(v4, build)
	}
	if len(v6) > 0 {
		pt.v6 = cut6(v6, build)
	}
	return pt
}

// paint builds the IPv4 index from the prefixes, shortest first, and the
// build trie that holds each prefix's merged port map.
func (c *compiler) paint(pfxs []netip.Prefix, build *bart.Table[*portMap]) []uint64 {
	l1 := make([]uint64, 1<<16)
	long := map[uint32][]netip.Prefix{} // prefixes longer than /16, by /16
	for _, p := range pfxs {
		a := p.Addr().As4()
		hi := uint32(a[0])<<8 | uint32(a[1])
		if p.Bits() > 16 {
			long[hi] = append(long[hi], p)
			continue
		}
		pm, _ := build.Get(p)
		for i := hi; i < hi+1<<(16-p.Bits()); i++ {
			l1[i] = pm.ref // longer prefixes come later and overwrite
		}
	}
	his := make([]uint32, 0, len(long))
	for hi := range long {
		his = append(his, hi)
	}
	slices.Sort(his)
	for _, hi := range his {
		// Cut the /16 where its longer prefixes start and end; the
		// longest-prefix match at each cut holds until the next.
		cuts := []uint32{0}
		for _, p := range long[hi] {
			a := p.Addr().As4()
			lo := uint32(a[2])<<8 | uint32(a[3])
			cuts = append(cuts, lo, lo+1<<(32-p.Bits()))
		}
		slices.Sort(cuts)
		cuts = slices.Compact(cuts)
		off := uint64(len(c.ranges))
		last := ^uint64(0)
		for _, x := range cuts {
			if x > 0xffff {
				break
			}
			addr := netip.AddrFrom4([4]byte{byte(hi >> 8), byte(hi), byte(x >> 8), byte(x)})
			var ref uint64
			if pm, ok := build.Lookup(addr); ok {
				ref = pm.ref
			}
			if ref != last {
				c.ranges = append(c.ranges, uint64(x)<<48|ref)
				last = ref
			}
		}
		l1[hi] = rangeFlag | off<<16 | (uint64(len(c.ranges)) - off - 1)
	}
	return l1
}

// cut6 builds the IPv6 index from the prefixes and the build trie that
// holds each prefix's merged port map.
func cut6(pfxs []netip.Prefix, build *bart.Table[*portMap]) v6Index {
	type u128 struct{ hi, lo uint64 }
	cuts := []u128{{}}
	for _, p := range pfxs {
		a := p.Addr().As16()
		start := u128{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])}
		cuts = append(cuts, start)
		// One past the last address: add 2^(128-bits), unless it wraps.
		end := start
		if b := p.Bits(); b == 0 {
			continue
		} else if b <= 64 {
			end.hi += 1 << (64 - b)
			end.lo = 0
			if end.hi == 0 {
				continue
			}
		} else {
			end.lo += 1 << (128 - b)
			if end.lo == 0 {
				end.hi++
				if end.hi == 0 {
					continue
				}
			}
		}
		cuts = append(cuts, end)
	}
	slices.SortFunc(cuts, func(a, b u128) int {
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		return cmp.Compare(a.lo, b.lo)
	})
	cuts = slices.Compact(cuts)
	var x v6Index
	last := ^uint64(0)
	for _, c := range cuts {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], c.hi)
		binary.BigEndian.PutUint64(a[8:], c.lo)
		var ref uint64
		if pm, ok := build.Lookup(netip.AddrFrom16(a)); ok {
			ref = pm.ref
		}
		if ref != last || len(x.hi) == 0 {
			x.hi, x.lo, x.ref = append(x.hi, c.hi), append(x.lo, c.lo), append(x.ref, ref)
			last = ref
		}
	}
	x.hi, x.lo, x.ref = slices.Clip(x.hi), slices.Clip(x.lo), slices.Clip(x.ref)
	if len(x.hi) > 32 {
		x.index()
	}
	return x
}

// index builds first, the bucket index over the starts (see v6Index).
func (x *v6Index) index() {
	n := len(x.hi)
	// The starts are sorted, so the common prefix of all but the first is
	// that of the second and the last.
	dh, dl := x.hi[1]^x.hi[n-1], x.lo[1]^x.lo[n-1]
	common := uint(bits.LeadingZeros64(dh))
	if dh == 0 {
		common = 64 + uint(bits.LeadingZeros64(dl))
	}
	x.shift = min(common, 112)
	x.commonHi, x.commonLo = shr128(x.hi[1], x.lo[1], 128-x.shift)
	x.first = make([]uint32, 1<<16+1)
	// first[b] = index of the first start (after the first) in bucket >= b.
	j := 1
	for b := range 1 << 16 {
		for j < n {
			_, sb := shr128(x.hi[j], x.lo[j], 112-x.shift)
			if int(sb&0xffff) >= b {
				break
			}
			j++
		}
		x.first[b] = uint32(j)
	}
	x.first[1<<16] = uint32(n)
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
	off := uint64(len(c.pieces))
	pm := &portMap{starts: slices.Clip(m.starts), ords: slices.Clip(m.ords), ref: off<<16 | uint64(len(m.starts)-1)}
	c.shared[k] = pm
	for i := range m.starts {
		var v uint64
		if o := m.ords[i]; o != 0 {
			e := c.entries[o]
			v = uint64(e.group+1)<<32 | uint64(uint32(e.rule))
		}
		c.pieces = append(c.pieces, uint64(m.starts[i])<<48|v)
	}
	return pm
}
