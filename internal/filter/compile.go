package filter

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"

	"github.com/gaissmai/bart"
)

// Compile builds the lookup table for a validated rules file, judging
// ACL expiries against the current time (see CompileAt).
func Compile(f *rules.File) (*Table, error) { return CompileAt(f, time.Now()) }

// CompileAt builds the lookup table for a validated rules file. ACL
// entries that expire at or before now are left out of the index (they
// keep their slots); Table.NextExpiry says when to compile again.
func CompileAt(f *rules.File, now time.Time) (*Table, error) {
	if f == nil {
		return nil, fmt.Errorf("compile: no rules file")
	}
	if len(f.Groups) >= 1<<16-1 {
		return nil, fmt.Errorf("compile: %d groups is too many: at most %d", len(f.Groups), 1<<16-2)
	}
	t := &Table{file: f, slots: make([]groupSlots, len(f.Groups)), compiledAt: now}
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
			if g.Ingress[ri].Limit != nil {
				continue // after every rule without one: see below
			}
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
	// Rules with a limit come last, so that a connection a rule without
	// one allows is reported (and so not braked) by that rule: the most
	// permissive rule wins, as ever.
	for gi := range f.Groups {
		g := &f.Groups[gi]
		for ri := range g.Ingress {
			if g.Ingress[ri].Limit != nil {
				srcs[direction.Ingress] = append(srcs[direction.Ingress], c.source(&g.Ingress[ri], int32(gi), int32(ri), direction.Ingress))
			}
		}
	}
	if len(c.entries) > 1<<31 {
		return nil, fmt.Errorf("compile: %d rules is too many", len(c.entries)-1)
	}
	t.stats.Rules = len(c.entries) - 1
	if f.HasInterfaces() {
		t.iface = c.compileViews(f, srcs)
		t.dirs = t.iface.views[0]
		t.stats.Views = len(t.iface.views)
	} else {
		for dir := range srcs {
			t.dirs[dir] = c.dir(srcs[dir])
		}
	}
	t.audit = auditsOf(f, t.iface)
	if len(c.pieces) >= 1<<32 || len(c.ranges) >= 1<<32 {
		return nil, fmt.Errorf("compile: table too large")
	}
	t.pieces, t.ranges = slices.Clip(c.pieces), slices.Clip(c.ranges)
	t.stats.Prefixes = c.prefixes
	t.stats.PortMaps = len(c.shared)
	t.stats.Intervals = len(t.pieces) - 1
	t.stats.V4Ranges = len(t.ranges)
	if err := t.compileACL(f, now); err != nil {
		return nil, err
	}
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
	prefixes := r.Prefixes
	if len(r.Members) > 0 { // the addresses of the groups it references
		prefixes = append(slices.Clip(prefixes), r.Members...)
	}
	s := source{all: r.Proto.All, proto: r.Proto.Num, prefixes: prefixes, ord: uint32(len(c.entries) - 1)}
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

// entry is a slot's rule, as the compiler numbers them.
type entry struct {
	group int32
	rule  int32 // NoRule for a group's implicit egress default
	dir   direction.Dir
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
	// shareProtos, when not nil, holds the protoTables built so far by
	// the rules they hold (protoKey), for views to share.
	shareProtos map[string]*protoTable
	// Scratch space reused by buildProto, merge and intern.
	own  []ownPiece
	pcs  []piece
	cuts []uint16
	vals []uint32
	key  []byte
}

// ownPiece is a piece and the prefix it is at.
type ownPiece struct {
	p  netip.Prefix
	pc piece
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
	if c.shareProtos == nil {
		return c.buildProto(srcs, proto)
	}
	key := protoKey(srcs, proto)
	if pt, ok := c.shareProtos[key]; ok {
		return pt
	}
	pt := c.buildProto(srcs, proto)
	c.shareProtos[key] = pt
	return pt
}

func (c *compiler) buildProto(srcs []source, proto int) *protoTable {
	// Every (prefix, piece) of the protocol, in one slice: a prefix's
	// pieces end up side by side once sorted.
	all := c.own[:0]
	for i := range srcs {
		s := &srcs[i]
		if !s.all && int(s.proto) != proto {
			continue
		}
		for _, p := range s.prefixes {
			for _, r := range s.ranges {
				all = append(all, ownPiece{p: p, pc: piece{lo: r.Lo, hi: r.Hi, ord: s.ord}})
			}
		}
	}
	// Supernets first, so that a prefix's nearest supernet is already in
	// the trie (with its merged map) when the prefix is reached.
	slices.SortFunc(all, func(a, b ownPiece) int {
		if c := cmp.Compare(a.p.Bits(), b.p.Bits()); c != 0 {
			return c
		}
		return a.p.Addr().Compare(b.p.Addr())
	})
	c.own = all
	// During the build a trie finds each prefix's nearest supernet.
	build := new(bart.Table[*portMap])
	pt := &protoTable{}
	var v4, v6 []netip.Prefix
	for i := 0; i < len(all); {
		p := all[i].p
		own := c.pcs[:0]
		for ; i < len(all) && all[i].p == p; i++ {
			own = append(own, all[i].pc)
		}
		c.pcs = own
		parent, _ := build.Lookup(p.Addr()) // longest already-inserted supernet
		pm := c.intern(c.merge(parent, own))
		build.Insert(p, pm)
		if p.Addr().Is4() {
			v4 = append(v4, p)
			continue
		}
		v6 = append(v6, p)
	}
	c.prefixes += len(v4) + len(v6)
	if len(v4) > 0 {
		if x, ok := cut4(v4, build); ok {
			pt.v4 = &x
		} else {
			pt.l1 = c.paint(v4, build)
		}
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
