package filter

import (
	"fmt"
	"slices"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// aclTable is the compiled network-ACL layer: the same kind of index as
// the groups' (direction, protocol, peer prefix, port map), whose port
// maps hold, instead of a group's rule, the live entry with the lowest
// number that matches: (action+1)<<32 | number. It exists only when the
// file has ACL entries, so that a table without them pays nothing.
type aclTable struct {
	dirs   [2]dirTable
	ranges []uint64
	pieces []uint64
	// nums are each direction's entry numbers, sorted, expired entries
	// included: an entry's slot is base[dir] + its place here.
	nums [2][]int32
	base [2]int32
	// idx[dir][i] is the index in File.ACL.List(dir) of the entry
	// numbered nums[dir][i].
	idx [2][]int32
}

// match returns the deciding entry's number and action for k; number 0
// when no entry matches.
func (a *aclTable) match(k Key) (int32, verdict.Verdict) {
	v := lookup(&a.dirs[k.Dir&1], a.ranges, a.pieces, k)
	act := v >> 32 & 0xffff
	if act == 0 {
		return 0, verdict.Drop
	}
	vd := verdict.Drop
	if rules.Action(act-1) == rules.Allow {
		vd = verdict.Accept
	}
	return int32(uint32(v)), vd
}

// compileACL builds t.acl from f's ACL, leaving out the entries expired
// at now, and sets t.nextExpiry to the earliest expiry of the others.
func (t *Table) compileACL(f *rules.File, now time.Time) error {
	if f.ACL.Len() == 0 {
		return nil
	}
	a := &aclTable{}
	c := compiler{shared: map[string]*portMap{}, pieces: []uint64{0}, entries: []entry{{}}}
	for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
		list := f.ACL.List(d)
		a.base[d] = int32(t.numSlots)
		t.numSlots += len(list)
		var srcs []source
		for _, i := range f.ACL.Sorted(d) {
			e := &list[i]
			if e.Number < rules.MinACLNumber || e.Number > rules.MaxACLNumber {
				return fmt.Errorf("compile: acl %s entry number %d out of range", d.Key(), e.Number)
			}
			if n := len(a.nums[d]); n > 0 && a.nums[d][n-1] == int32(e.Number) {
				return fmt.Errorf("compile: acl %s entry number %d repeated", d.Key(), e.Number)
			}
			a.nums[d] = append(a.nums[d], int32(e.Number))
			a.idx[d] = append(a.idx[d], int32(i))
			if e.Expired(now) {
				continue
			}
			if !e.Expires.IsZero() && (t.nextExpiry.IsZero() || e.Expires.Before(t.nextExpiry)) {
				t.nextExpiry = e.Expires
			}
			// The compiler's entry for an ACL entry carries what the
			// port map stores: group+1 is action+1, rule the number.
			r := e.Rule()
			s := c.source(&r, int32(e.Action), int32(e.Number), d)
			srcs = append(srcs, s)
		}
		a.dirs[d] = c.dir(srcs)
	}
	if len(c.pieces) >= 1<<32 || len(c.ranges) >= 1<<32 {
		return fmt.Errorf("compile: acl table too large")
	}
	a.pieces, a.ranges = slices.Clip(c.pieces), slices.Clip(c.ranges)
	t.stats.ACL = f.ACL.Len()
	t.acl = a
	return nil
}

// NextExpiry is the earliest expiry among the ACL entries that the table
// matches (those not expired when it was compiled), or the zero time when
// none expires. The table does not change at that time: whoever holds it
// compiles the file again then (CompileAt with the new time), and the
// new table leaves the expired entry out.
func (t *Table) NextExpiry() time.Time { return t.nextExpiry }

// CompiledAt is the time the table's ACL expiries were judged against.
func (t *Table) CompiledAt() time.Time { return t.compiledAt }

// HasACL reports whether the table has ACL entries (live or expired).
func (t *Table) HasACL() bool { return t.acl != nil }

// aclPlace returns the place of entry number n of direction d in the
// sorted numbers, or -1.
func (a *aclTable) place(d direction.Dir, n int32) int {
	nums := a.nums[d&1]
	i, found := slices.BinarySearch(nums, n)
	if !found {
		return -1
	}
	return i
}

// ACLEntry returns the ACL entry a verdict names (Result.ACL), or nil
// when no entry decided.
func (t *Table) ACLEntry(v Result) *rules.ACLEntry {
	if v.ACL == 0 || t.acl == nil {
		return nil
	}
	i := t.acl.place(v.Dir, v.ACL)
	if i < 0 {
		return nil
	}
	list := t.file.ACL.List(v.Dir)
	return &list[t.acl.idx[v.Dir&1][i]]
}

// ACLSlot returns the slot of the ACL entry numbered n in direction d,
// or -1 when there is none.
func (t *Table) ACLSlot(d direction.Dir, n int) int {
	if t.acl == nil || n <= 0 || n > rules.MaxACLNumber {
		return -1
	}
	i := t.acl.place(d, int32(n))
	if i < 0 {
		return -1
	}
	return int(t.acl.base[d&1]) + i
}

// describeACL puts a verdict by an ACL entry in words.
func (t *Table) describeACL(v Result) string {
	e := t.ACLEntry(v)
	word := "dropped"
	if v.Accepted() {
		word = "accepted"
	}
	if e == nil {
		return fmt.Sprintf("%s by acl %s entry %d", word, v.Dir.Key(), v.ACL)
	}
	r := e.Rule()
	s := fmt.Sprintf("%s by acl %s entry %d (%s %s)", word, v.Dir.Key(), e.Number, e.Action, r.Format(v.Dir))
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// icmpProto reports whether p's lookups use type and code.
func icmpProto(p ipproto.Proto) bool { return p == ipproto.ICMP || p == ipproto.ICMPv6 }

// ACLKey is the Result naming the ACL entry numbered n of direction d
// with the verdict left out (a drop): the key under which hit counts of
// ACL entries are kept (engine.Engine.RuleHits).
func ACLKey(d direction.Dir, n int) Result {
	return Result{Dir: d, Group: -1, Rule: NoRule, ACL: int32(n)}
}
