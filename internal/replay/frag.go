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
}

// defrag reassembles IPv4 with gopacket's ip4defrag and keeps, for each
// datagram in progress, how many captured packets wait on it. This is the
// only part of the replay that allocates per packet, and only for
// fragments.
type defrag struct {
	d       *ip4defrag.IPv4Defragmenter
	pending map[frag4Key]*held
	next    int64 // capture time of the next expiry check

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

// add feeds one IPv4 fragment (ip: from its IP header on). When it
// completes a datagram, out is the whole datagram and h its held
// fragments (to be given the datagram's verdict), already forgotten.
func (f *defrag) add(ip []byte, ts int64) (res fragResult, k frag4Key, out []byte, h *held) {
	buf := append([]byte(nil), ip...) // the reader reuses ip
	in := new(layers.IPv4)
	if err := in.DecodeFromBytes(buf, gopacket.NilDecodeFeedback); err != nil {
		return fragBad, k, nil, nil
	}
	copy(k.src[:], in.SrcIP.To4())
	copy(k.dst[:], in.DstIP.To4())
	k.id = in.Id
	got, err := f.d.DefragIPv4WithTimestamp(in, time.Unix(0, ts))
	switch {
	case err != nil:
		return fragBad, k, nil, nil
	case got == in:
		return fragUntouched, k, nil, nil
	case got == nil:
		return fragHeld, k, nil, nil
	}
	if len(got.Payload)+20 > 0xffff {
		return fragBad, k, nil, nil
	}
	// The whole datagram, behind a plain 20-byte header (options dropped:
	// the decoder needs addresses, protocol and length, and the
	// checksum is never checked).
	whole := make([]byte, 20+len(got.Payload))
	whole[0] = 0x45
	whole[1] = got.TOS
	binary.BigEndian.PutUint16(whole[2:4], uint16(len(whole)))
	binary.BigEndian.PutUint16(whole[4:6], got.Id)
	whole[8] = got.TTL
	whole[9] = byte(got.Protocol)
	copy(whole[12:16], k.src[:])
	copy(whole[16:20], k.dst[:])
	copy(whole[20:], got.Payload)
	h = f.pending[k]
	delete(f.pending, k)
	if h != nil {
		f.held -= uint64(h.count)
	}
	f.reassembled++
	return fragDone, k, whole, h
}

// hold records a fragment that add reported as held; slot is its
// verdict-log slot (ignored when verdicts are not written).
func (f *defrag) hold(k frag4Key, slot uint64, withSlot bool, ts int64) {
	h := f.pending[k]
	if h == nil {
		h = &held{}
		f.pending[k] = h
	}
	h.count++
	h.last = ts
	if withSlot {
		h.slots = append(h.slots, slot)
	}
	f.held++
}

// expire gives up on datagrams idle for TimeoutFragment (all of them when
// all is set, at the end of a capture) and returns them.
func (f *defrag) expire(ts int64, all bool) []*held {
	if !all && (len(f.pending) == 0 || ts < f.next) {
		return nil
	}
	f.next = ts + second
	var gone []*held
	for k, h := range f.pending {
		if all || ts-h.last > TimeoutFragment {
			gone = append(gone, h)
			delete(f.pending, k)
			f.held -= uint64(h.count)
			f.incomplete += uint64(h.count)
		}
	}
	if all {
		f.d = ip4defrag.NewIPv4Defragmenter()
	} else if len(gone) > 0 {
		f.d.DiscardOlderThan(time.Unix(0, ts-TimeoutFragment))
	}
	return gone
}
