package filter

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// v4Ranges is IPv4 space cut into ranges at every prefix's first and
// one-past-last address, for a protocol with few IPv4 prefixes: range i
// starts at start[i] (start[0] is 0) and has the map reference ref[i] of
// the longest prefix covering it. A lookup finds the last start at or
// below the address: first, indexed by the address's top byte, narrows
// the search to the starts in that /8 and the one before them (most /8s
// hold none, and the answer is then one load away). It replaces the /16
// array (512 KiB whatever the number of rules) up to maxV4Ranges ranges.
type v4Ranges struct {
	start []uint32
	ref   []uint64
	// first[b] is the index of the first start after start[0] whose top
	// byte is b or more (len(start) when none).
	first *[257]uint8
}

// maxV4Ranges is the most ranges a protocol's IPv4 index holds before it
// takes the /16 array instead (first's entries are bytes).
const maxV4Ranges = 255

func (x *v4Ranges) lookup(a uint32) uint64 {
	if x.first == nil {
		return 0
	}
	b := a >> 24
	lo, hi := int(x.first[b])-1, int(x.first[b+1])
	if lo < 0 || hi > len(x.start) || hi > len(x.ref) || lo >= hi {
		return 0 // not built by cut4
	}
	s := x.start[lo:hi]
	// Branch-free binary search, as in v6Index.lookup; s[0] <= a.
	i, n := 0, len(s)
	for n > 1 {
		half := n >> 1
		_, borrow := bits.Sub32(a, s[i+half], 0)
		i += half &^ -int(borrow) // start <= a when no borrow
		n -= half
	}
	return x.ref[lo+i]
}

// cut4 builds the ranges of the IPv4 prefixes pfxs from the build trie
// that holds each prefix's merged port map; ok is false when there would
// be more than maxV4Ranges.
func cut4(pfxs []netip.Prefix, build *bart.Table[*portMap]) (x v4Ranges, ok bool) {
	if 2*len(pfxs)+1 > maxV4Ranges {
		return x, false
	}
	cuts := make([]uint64, 1, 2*len(pfxs)+1) // uint64: one past 255.255.255.255 is 1<<32
	for _, p := range pfxs {
		a := p.Addr().As4()
		start := uint64(binary.BigEndian.Uint32(a[:]))
		cuts = append(cuts, start, start+1<<(32-p.Bits()))
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	for _, c := range cuts {
		if c > 1<<32-1 {
			break
		}
		var ref uint64
		if pm, ok := build.Lookup(netip.AddrFrom4([4]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)})); ok {
			ref = pm.ref
		}
		if len(x.ref) == 0 || ref != x.ref[len(x.ref)-1] {
			x.start, x.ref = append(x.start, uint32(c)), append(x.ref, ref)
		}
	}
	x.start, x.ref = slices.Clip(x.start), slices.Clip(x.ref)
	x.first = new([257]uint8)
	j := 1
	for b := range 257 {
		for j < len(x.start) && int(x.start[j]>>24) < b {
			j++
		}
		x.first[b] = uint8(j)
	}
	return x, true
}
