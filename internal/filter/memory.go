package filter

import "unsafe"

// MemoryBytes estimates the memory the compiled table holds for matching:
// its lookup arrays and rule slots, not the rules file it was compiled
// from. Shared arrays (two protocols answering from one l1) are counted
// once.
func (t *Table) MemoryBytes() int {
	const word = int(unsafe.Sizeof(uint64(0)))
	n := int(unsafe.Sizeof(*t))
	n += (len(t.ranges) + len(t.pieces)) * word
	n += len(t.slots) * int(unsafe.Sizeof(groupSlots{}))
	seen := make(map[*protoTable]bool)
	l1s := make(map[*uint64]bool)
	views := [][2]dirTable{t.dirs}
	if t.iface != nil {
		views = t.iface.views
	}
	for _, pt := range protoTables(views) {
		if pt == nil || seen[pt] {
			continue
		}
		seen[pt] = true
		n += int(unsafe.Sizeof(*pt))
		if len(pt.l1) > 0 && !l1s[&pt.l1[0]] {
			l1s[&pt.l1[0]] = true
			n += len(pt.l1) * word
		}
		if x := pt.v4; x != nil {
			n += int(unsafe.Sizeof(*x)) + len(x.start)*int(unsafe.Sizeof(uint32(0))) + len(x.ref)*word + len(x.first)
		}
		n += (len(pt.v6.hi) + len(pt.v6.lo) + len(pt.v6.ref)) * word
		n += len(pt.v6.first) * int(unsafe.Sizeof(uint32(0)))
	}
	if t.iface != nil {
		n += len(t.iface.views) * int(unsafe.Sizeof(t.dirs))
	}
	return n
}

// protoTables lists the protoTables of every direction of views.
func protoTables(views [][2]dirTable) []*protoTable {
	var out []*protoTable
	for v := range views {
		for d := range views[v] {
			out = append(out, views[v][d].byProto[:]...)
		}
	}
	return out
}
