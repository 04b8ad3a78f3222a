package replay

import (
	"encoding/binary"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"
)

// frag4Key names an IPv4 datagram's fragments, as ip4defrag does.
type frag4Key struct {
	src, dst [4]byte
	id       uint16
}

// held is one IPv4 datagram whose fragments wait for the rest.
type held struct {
	count int      // fragments held
	slots []uint64 // their verdict-log slots, when verdicts are written
	last  int64
	// frags are the fragments of it given to ip4defrag, which keeps
	// pointers to them until the datagram completes.
	frags []*fragment
}

// fragment is one IPv4 fragment as ip4defrag takes it: a decoded header
// over the packet's bytes, or over a copy of them when the reader reuses
// its buffer. ip4defrag
// keeps a pointer to it, so it is recycled only once ip4defrag has surely
// let go of it: when its datagram completes (ip4defrag then forgets the
// datagram) or when the defragmenter itself is replaced at the end of a
// capture. A fragment ip4defrag may still hold otherwise (after an
// error, or when its datagram times out here) is left to the garbage
// collector instead.
type fragment struct {
	ip  layers.IPv4
	buf []byte // the copy, when the packet's own bytes do not stay put
}

// Bounds on what defrag keeps for reuse.
const (
	maxFreeFrags = 1024
	maxFreeHeld  = 256
)

// defrag reassembles IPv4 with gopacket's ip4defrag and keeps, for each
// datagram in progress, how many captured packets wait on it. It reuses
// its fragments, datagram records and the reassembled datagram's buffer;
// what allocates per fragment is ip4defrag itself (a list element per
// fragment, the reassembled payload per datagram).
type defrag struct {
	d       *ip4defrag.IPv4Defragmenter
	used    bool // d has been given a fragment since it was made
	pending map[frag4Key]*held
	next    int64 // capture time of the next expiry check

	freeFrags []*fragment
	freeHeld  []*held
	gone      []*held // expire's result, reused
	whole     []byte  // the latest reassembled datagram, reused

	held, reassembled, incomplete uint64 // packets
}

func newDefrag() *defrag {
	return &defrag{d: ip4defrag.NewIPv4Defragmenter(), pending: make(map[frag4Key]*held)}
}

// fragResult is what became of one fragment.
type fragResult uint8

const (
	fragHeld      fragResult = iota // waiting for the rest of its datagram
	fragDone                        // completed the datagram: out holds it
	fragBad                         // rejected by the defragmenter: malformed
	fragUntouched                   // not really a fragment (DF set): judge as is
)

// add feeds one IPv4 fragment (ip: from its IP header on), received at
// ts. stable says that ip stays valid and unchanged until the end of the
// capture (a capture read in place), so that it need not be copied.
//
// fragHeld: h is its datagram's record, where the fragment is counted
// (the caller adds its verdict-log slot to h.slots). fragDone: out is the
// whole datagram (valid until the next add) and h the datagram's held
// fragments (nil if none), already forgotten: the caller gives them the
// datagram's verdict, then hands h to recycle.
func (f *defrag) add(ip []byte, ts int64, stable bool) (res fragResult, h *held, out []byte) {
	fr := f.newFragment()
	if !stable {
		fr.buf = append(fr.buf[:0], ip...)
		ip = fr.buf
	}
	in := &fr.ip
	if err := in.DecodeFromBytes(ip, gopacket.NilDecodeFeedback); err != nil {
		f.freeFragment(fr)
		return fragBad, nil, nil
	}
	var k frag4Key
	copy(k.src[:], in.SrcIP)
	copy(k.dst[:], in.DstIP)
	k.id = in.Id
	f.used = true
	got, err := f.d.DefragIPv4WithTimestamp(in, time.Unix(0, ts))
	switch {
	case err != nil:
		// ip4defrag may have kept fr before failing: fr is the GC's now.
		return fragBad, nil, nil
	case got == in:
		f.freeFragment(fr)
		return fragUntouched, nil, nil
	case got == nil:
		h = f.pending[k]
		if h == nil {
			h = f.newHeld()
			f.pending[k] = h
		}
		h.count++
		h.last = ts
		h.frags = append(h.frags, fr)
		f.held++
		return fragHeld, h, nil
	}
	// The datagram is complete and ip4defrag has forgotten it: its
	// fragments are free once the payload is copied out.
	h = f.pending[k]
	if len(got.Payload)+20 > 0xffff {
		// Held fragments stay pending until they time out.
		f.freeFragment(fr)
		if h != nil {
			f.freeFragments(h)
		}
		return fragBad, nil, nil
	}
	// The whole datagram, behind a plain 20-byte header (options dropped:
	// the decoder needs addresses, protocol and length, and the
	// checksum is never checked).
	n := 20 + len(got.Payload)
	if cap(f.whole) < n {
		f.whole = make([]byte, n)
	}
	whole := f.whole[:n]
	whole[0] = 0x45
	whole[1] = got.TOS
	binary.BigEndian.PutUint16(whole[2:4], uint16(n))
	binary.BigEndian.PutUint16(whole[4:6], got.Id)
	whole[6], whole[7] = 0, 0 // flags, fragment offset
	whole[8] = got.TTL
	whole[9] = byte(got.Protocol)
	whole[10], whole[11] = 0, 0 // checksum
	copy(whole[12:16], k.src[:])
	copy(whole[16:20], k.dst[:])
	copy(whole[20:], got.Payload)
	f.freeFragment(fr)
	if h != nil {
		delete(f.pending, k)
		f.held -= uint64(h.count)
		f.freeFragments(h)
	}
	f.reassembled++
	return fragDone, h, whole
}

// expire gives up on datagrams idle for TimeoutFragment (all of them when
// all is set, at the end of a capture) and returns them, to be given a
// verdict and recycled. The slice is valid until the next call.
func (f *defrag) expire(ts int64, all bool) []*held {
	if !all && (len(f.pending) == 0 || ts < f.next) {
		return nil
	}
	f.next = ts + second
	gone := f.gone[:0]
	for k, h := range f.pending {
		if all || ts-h.last > TimeoutFragment {
			gone = append(gone, h)
			delete(f.pending, k)
			f.held -= uint64(h.count)
			f.incomplete += uint64(h.count)
			if all {
				f.freeFragments(h) // the defragmenter goes below
			} else {
				clear(h.frags) // ip4defrag may still hold them
				h.frags = h.frags[:0]
			}
		}
	}
	f.gone = gone
	if all {
		if f.used {
			f.d = ip4defrag.NewIPv4Defragmenter()
			f.used = false
		}
	} else if len(gone) > 0 {
		f.d.DiscardOlderThan(time.Unix(0, ts-TimeoutFragment))
	}
	return gone
}

// recycle takes back a datagram record that add or expire handed out,
// once the caller is done with it.
func (f *defrag) recycle(h *held) {
	clear(h.frags)
	*h = held{slots: h.slots[:0], frags: h.frags[:0]}
	if len(f.freeHeld) < maxFreeHeld {
		f.freeHeld = append(f.freeHeld, h)
	}
}

func (f *defrag) newHeld() *held {
	if n := len(f.freeHeld); n > 0 {
		h := f.freeHeld[n-1]
		f.freeHeld = f.freeHeld[:n-1]
		return h
	}
	return new(held)
}

func (f *defrag) newFragment() *fragment {
	if n := len(f.freeFrags); n > 0 {
		fr := f.freeFrags[n-1]
		f.freeFrags = f.freeFrags[:n-1]
		return fr
	}
	return new(fragment)
}

func (f *defrag) freeFragment(fr *fragment) {
	if len(f.freeFrags) < maxFreeFrags {
		// Keep no pointer into a capture the caller owns.
		fr.ip = layers.IPv4{Options: fr.ip.Options[:0]}
		f.freeFrags = append(f.freeFrags, fr)
	}
}

// freeFragments recycles the fragments of h, which ip4defrag no longer
// holds.
func (f *defrag) freeFragments(h *held) {
	for _, fr := range h.frags {
		f.freeFragment(fr)
	}
	clear(h.frags)
	h.frags = h.frags[:0]
}
