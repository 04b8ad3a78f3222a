package nfq

import (
	"encoding/binary"
	"maps"
	"slices"
	"testing"

	"github.com/fwd-project/fwd/internal/types/verdict"
)

// kernelApply answers the queued ids with a verdict buffer the way
// nfnetlink_queue does: a verdict message answers its id, a batch verdict
// every queued id up to its own. It returns id -> verdict<<32|mark and the
// number of messages.
func kernelApply(t *testing.T, queued []uint32, out []byte) (map[uint32]uint64, int) {
	t.Helper()
	left := slices.Clone(queued)
	got := map[uint32]uint64{}
	n := 0
	for r := 0; r < len(out); n++ {
		l := int(binary.NativeEndian.Uint32(out[r:]))
		typ := binary.NativeEndian.Uint16(out[r+4:])
		v := uint64(binary.BigEndian.Uint32(out[r+offVerdict:])) << 32
		if l == verdictLen+8 {
			v |= uint64(binary.BigEndian.Uint32(out[r+offMark:]))
		}
		id := binary.BigEndian.Uint32(out[r+offID:])
		switch typ {
		case msgVerdict:
			i := slices.Index(left, id)
			if i < 0 {
				t.Fatalf("verdict for id %d, not queued", id)
			}
			got[id] = v
			left = slices.Delete(left, i, i+1)
		case msgVerdictBatch:
			k := 0
			for k < len(left) && left[k] <= id {
				got[left[k]] = v
				k++
			}
			if k == 0 {
				t.Fatalf("batch verdict up to %d answers nothing", id)
			}
			left = left[k:]
		default:
			t.Fatalf("message type %#x", typ)
		}
		r += l
	}
	return got, n
}

func TestCoalesce(t *testing.T) {
	const mark = 0x20000000
	type dec struct {
		id   uint32
		v    verdict.Verdict
		mark uint32 // the packet's own mark
	}
	A, D := verdict.Accept, verdict.Drop
	tests := []struct {
		name      string
		decided   []dec
		stuck     []uint32 // queued in the kernel, never read (a lost message)
		malformed bool
		tainted   bool
		msgs      int
	}{
		{name: "one accept", decided: []dec{{1, A, 0}}, msgs: 1},
		{name: "accepts", decided: []dec{{1, A, 0}, {2, A, 0}, {3, A, 0}}, msgs: 1},
		{name: "runs", decided: []dec{{4, A, 0}, {5, A, 0}, {6, D, 0}, {7, D, 0}, {8, A, 0}}, msgs: 3},
		{name: "gap in ids", decided: []dec{{10, A, 0}, {12, A, 0}, {13, D, 0}}, msgs: 2},
		{name: "marks differ", decided: []dec{{1, A, 0x7}, {2, A, 0}, {3, A, 0}}, msgs: 2},
		{name: "drops ignore marks", decided: []dec{{1, D, 0x7}, {2, D, 0}}, msgs: 1},
		{name: "out of order", decided: []dec{{2, A, 0}, {1, A, 0}}, msgs: 2},
		{name: "malformed seen", decided: []dec{{2, A, 0}, {3, A, 0}}, stuck: []uint32{1}, malformed: true, msgs: 2},
		{name: "write failed before", decided: []dec{{2, A, 0}, {3, A, 0}}, stuck: []uint32{1}, tainted: true, msgs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := batcher{queue: 5, acceptMark: mark, tainted: tt.tainted}
			if tt.malformed {
				b.malformed.Add(1)
			}
			want := map[uint32]uint64{}
			queued := slices.Clone(tt.stuck)
			for _, d := range tt.decided {
				b.verdict(d.id, d.v, d.mark|mark)
				queued = append(queued, d.id)
				if d.v == A {
					want[d.id] = nfAccept<<32 | uint64(d.mark|mark)
				} else {
					want[d.id] = nfDrop << 32
				}
			}
			slices.Sort(queued)
			b.coalesce()
			got, n := kernelApply(t, queued, b.out)
			if !maps.Equal(got, want) {
				t.Errorf("kernel verdicts %v, want %v", got, want)
			}
			if n != tt.msgs {
				t.Errorf("%d messages, want %d", n, tt.msgs)
			}
			if b.pending != len(tt.decided) {
				t.Errorf("pending %d, want %d", b.pending, len(tt.decided))
			}
		})
	}
}

// TestCoalesceZeroAlloc: coalescing works in place.
func TestCoalesceZeroAlloc(t *testing.T) {
	b := batcher{queue: 5, acceptMark: 1, out: make([]byte, 0, 64*(verdictLen+8))}
	allocs := testing.AllocsPerRun(100, func() {
		b.out, b.pending = b.out[:0], 0
		for id := range uint32(64) {
			b.verdict(id+1, verdict.Accept, 1)
		}
		b.coalesce()
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations, want 0", allocs)
	}
}
