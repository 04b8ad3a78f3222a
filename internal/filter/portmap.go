package filter

import (
	"encoding/binary"
	"slices"
)

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

// merge returns the pointwise minimum (first rule wins; 0 means none) of a
// supernet's map and a prefix's own pieces. The map it returns lives in
// c's scratch space until the next merge: intern copies what it keeps,
// so that a prefix whose map is already shared allocates nothing.
func (c *compiler) merge(parent *portMap, own []piece) portMap {
	cuts := append(c.cuts[:0], 0)
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
	vals := slices.Grow(c.vals[:0], len(cuts))[:len(cuts)]
	for i, x := range cuts {
		vals[i] = 0
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
	// Join neighbours that say the same, in place.
	n := 0
	for i := range cuts {
		if i > 0 && vals[i] == vals[n-1] {
			continue
		}
		cuts[n], vals[n] = cuts[i], vals[i]
		n++
	}
	c.cuts, c.vals = cuts, vals
	return portMap{starts: cuts[:n], ords: vals[:n]}
}

// intern returns the shared copy of a port map.
func (c *compiler) intern(m portMap) *portMap {
	key := c.key[:0]
	for i := range m.starts {
		key = binary.LittleEndian.AppendUint16(key, m.starts[i])
		key = binary.LittleEndian.AppendUint32(key, m.ords[i])
	}
	c.key = key
	if pm, ok := c.shared[string(key)]; ok { // no allocation for the lookup
		return pm
	}
	off := uint64(len(c.pieces))
	pm := &portMap{starts: slices.Clone(m.starts), ords: slices.Clone(m.ords), ref: off<<16 | uint64(len(m.starts)-1)}
	c.shared[string(key)] = pm
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
