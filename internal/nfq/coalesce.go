package nfq

import "encoding/binary"

// msgVerdictBatch is NFQNL_MSG_VERDICT_BATCH: one verdict, and mark, for
// every packet of the queue whose id is not after the message's id.
const msgVerdictBatch = subsysQueue<<8 | 3

// Offsets in a verdict message as batcher.verdict writes it.
const (
	offVerdict = nlmsgHdrLen + nfgenLen + 4 // NFQA_VERDICT_HDR's verdict
	offID      = offVerdict + 4             // and id
	offMark    = verdictLen + 4             // NFQA_MARK's value, on an accept
)

// coalesce rewrites the verdict buffer so that each run of consecutive
// verdicts with the same verdict and mark is one NFQNL_MSG_VERDICT_BATCH
// for the run's last id, in place: the kernel then looks the queue up,
// parses and locks once per run rather than once per packet.
//
// A batch verdict answers every packet still queued up to its id, so it
// is only sent when that set is exactly the run: the packets of the
// queue arrive in id order on this one socket, every earlier one was
// answered by an earlier message (the kernel processes a buffer's
// messages in order), and ids only increase within the buffer. A queue
// that ever had a message whose id could not be read (malformed), or a
// verdict write that failed (tainted), may hold a packet fwd never
// answered: a batch verdict would answer it unjudged, so that queue is
// answered one message per packet from then on.
func (b *batcher) coalesce() {
	if b.pending < 2 || b.tainted || b.malformed.Load() != 0 {
		return
	}
	in := b.out
	prev := uint32(0)
	for r := 0; r < len(in); r += int(binary.NativeEndian.Uint32(in[r:])) {
		id := binary.BigEndian.Uint32(in[r+offID:])
		if r > 0 && id <= prev {
			return // out of order, or the ids wrapped: one message each
		}
		prev = id
	}
	same := func(a, c int) bool {
		la := binary.NativeEndian.Uint32(in[a:])
		if la != binary.NativeEndian.Uint32(in[c:]) ||
			binary.BigEndian.Uint32(in[a+offVerdict:]) != binary.BigEndian.Uint32(in[c+offVerdict:]) {
			return false
		}
		return la == verdictLen || binary.BigEndian.Uint32(in[a+offMark:]) == binary.BigEndian.Uint32(in[c+offMark:])
	}
	w := 0
	for r := 0; r < len(in); {
		last := r
		next := r + int(binary.NativeEndian.Uint32(in[r:]))
		for next < len(in) && same(r, next) {
			last = next
			next += int(binary.NativeEndian.Uint32(in[next:]))
		}
		l := next - last
		copy(in[w:], in[last:next]) // w <= r <= last: a forward move
		if last != r {
			binary.NativeEndian.PutUint16(in[w+4:], msgVerdictBatch)
		}
		w += l
		r = next
	}
	b.out = in[:w]
}
