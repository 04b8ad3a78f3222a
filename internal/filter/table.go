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
	"fmt"
	"math/bits"
	"strconv"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
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
	// acl is the network-ACL layer, nil when the file has no entries.
	acl *aclTable
	// iface holds the per-interface indexes, nil when no group names an
	// interface (see iface.go).
	iface      *ifaceIndex
	audit      audits // groups in audit mode (audit.go)
	nextExpiry time.Time
	compiledAt time.Time
	// failsafe admits new SSH from the admins' addresses before
	// anything else, nil when off (see WithFailsafe).
	failsafe *failsafe
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
	// /16 (same encoding as a map reference). nil when the protocol has
	// few IPv4 prefixes (v4 holds them) or none.
	l1 []uint64
	v4 *v4Ranges // a pointer: the struct stays as small as before for the array's lookups
	v6 v6Index
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

// Stats describes a compiled table.
type Stats struct {
	Rules     int // rules in the file, plus one per implicit egress default
	Prefixes  int // distinct (direction, protocol, prefix) entries
	Intervals int // port intervals over all distinct port maps
	PortMaps  int // distinct port maps (identical ones are shared)
	V4Ranges  int // address ranges inside IPv4 /16s split by longer prefixes
	ACL       int // ACL entries in the file, expired ones too
	Views     int // per-interface indexes (distinct group sets), 0 when no group names an interface
}

// Stats returns figures about the table's size.
func (t *Table) Stats() Stats { return t.stats }

// File returns the rules file the table was compiled from.
func (t *Table) File() *rules.File { return t.file }

// Match answers whether a new connection passes: the failsafe first,
// when the table has one (see WithFailsafe), then the ACL, when
// the table has one (the live entry with the lowest number that matches
// decides), then the security groups. It allocates nothing and takes no
// lock.
func (t *Table) Match(k Key) Result {
	if t.failsafe != nil && t.failsafe.match(k) {
		return Result{Verdict: verdict.Accept, Dir: k.Dir, Group: FailsafeGroup, Rule: NoRule}
	}
	if t.acl != nil {
		if n, vd := t.acl.match(k); n != 0 {
			return Result{Verdict: vd, Dir: k.Dir, Group: -1, Rule: NoRule, ACL: n}
		}
	}
	dt := &t.dirs[k.Dir&1]
	if t.iface != nil {
		dt = t.iface.dirs(k)
	}
	v := lookup(dt, t.ranges, t.pieces, k)
	g := int32(v>>32&0xffff) - 1
	if g < 0 {
		return Result{Dir: k.Dir, Group: -1, Rule: NoRule}
	}
	return Result{Verdict: verdict.Accept, Dir: k.Dir, Group: g, Rule: int32(uint32(v))}
}

// lookup returns the port-map value that holds for k in one index: 0
// when nothing matches.
func lookup(dt *dirTable, ranges, pieces []uint64, k Key) uint64 {
	pt := dt.byProto[k.Proto]
	if pt == nil {
		return 0
	}
	var ref uint64
	if k.Peer.Is4() {
		a := k.Peer.As4()
		if pt.l1 == nil {
			if pt.v4 == nil {
				return 0
			}
			ref = pt.v4.lookup(uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]))
		} else if ref = pt.l1[uint32(a[0])<<8|uint32(a[1])]; ref&rangeFlag != 0 {
			ref = search(run(ranges, ref), uint16(a[2])<<8|uint16(a[3])) & refMask
		}
	} else if k.Peer.Is6() {
		ref = pt.v6.lookup(k.Peer.As16())
	}
	x := k.Port
	if icmpProto(k.Proto) {
		x = uint16(k.Type)<<8 | uint16(k.Code)
	}
	return search(run(pieces, ref), x)
}

// NumSlots is the number of rule slots: one per rule of the file, plus
// one per implicit egress default, plus one per ACL entry (expired ones
// too).
func (t *Table) NumSlots() int { return t.numSlots }

// Slot returns the slot in [0, NumSlots) of the rule an accept verdict
// names, or of the ACL entry an ACL verdict (accept or drop) names; -1
// for a drop by no rule. It allocates nothing, so the hot path can count
// per rule.
func (t *Table) Slot(v Result) int {
	if v.ACL != 0 {
		return t.ACLSlot(v.Dir, int(v.ACL))
	}
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
// rule sgr-cd50c0891d1f (tcp 80,443 from any)": a rule is named by its ID
// (rules.Rule.ID), or by its index in the group's list when it has none.
func (t *Table) Describe(v Result) string {
	if v.IsFailsafe() {
		return describeFailsafe(v)
	}
	if v.ACL != 0 {
		return t.describeACL(v)
	}
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
	id := r.ID
	if id == "" {
		id = strconv.Itoa(int(v.Rule))
	}
	s := fmt.Sprintf("accepted by group %s, %s rule %s (%s)", name, v.Dir.Key(), id, r.Format(v.Dir))
	if r.Description != "" {
		s += ": " + r.Description
	}
	return s
}
