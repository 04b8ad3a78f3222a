package filter

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

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
