package replay

import (
	"sync"
	"sync/atomic"

	"github.com/fwd-project/fwd/internal/packet"
)

// The pipeline (Options.Parallel), for a capture read in place: a reader
// goroutine frames the records into batches (record boundaries, link
// layer) and hands them over in capture order; the Replayer's goroutine
// takes them in that order and does everything that has state (fragment
// reassembly, the flow tables, the counters, the verdict log) exactly as
// the sequential path does. Decoding a batch (packet.Decoder and the
// flow key) is shared: the reader, when it has no free batch to frame,
// decodes the newest batch nobody has claimed, while the Replayer's
// goroutine decodes the batch it needs next if the reader has not
// claimed it, so the work divides itself by the two sides' speeds.
// Decoding is a pure function of the packet's bytes: who decodes changes
// nothing but the time.

// pipeBatch is how many packets travel together, and pipeBatches how many
// batches are in flight: enough for either side to run on while the
// other is descheduled, few enough to stay in cache.
const (
	pipeBatch   = 256
	pipeBatches = 8
)

// pipeItem is one captured packet, framed, then decoded.
type pipeItem struct {
	p      packet.Packet
	key    flowKey // p's, when hasKey
	ip     []byte  // the IP bytes, when isIP
	ts     int64
	lt     LinkType
	isIP   bool // false: the frame carries no IPv4 or IPv6
	hasKey bool
	srcIsA bool
}

// The states of a batch's decoding.
const (
	batchFramed  int32 = iota // nobody has claimed its decoding yet
	batchClaimed              // being decoded (by the reader, under mu)
	batchDecoded
)

// pipeBatchT is a run of packets in capture order; the last batch of a
// capture has last set, and stop when the capture stopped early.
type pipeBatchT struct {
	items []pipeItem
	n     int
	last  bool
	stop  *StopError
	state atomic.Int32
	mu    sync.Mutex // held by the reader while it decodes the batch
}

// pipelined is packets for a capture read in place, with the framing on
// a second goroutine and the decoding shared.
func (r *Replayer) pipelined(name string, src *source, fs *FileStats) *StopError {
	full := make(chan *pipeBatchT, pipeBatches)
	free := make(chan *pipeBatchT, pipeBatches)
	if r.batches == nil { // kept for the next capture
		r.batches = make([]pipeBatchT, pipeBatches)
		for i := range r.batches {
			r.batches[i].items = make([]pipeItem, pipeBatch)
		}
	}
	for i := range r.batches {
		r.batches[i].last, r.batches[i].stop = false, nil
		free <- &r.batches[i]
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		rd := pipeReader{src: src, full: full, free: free, done: done}
		rd.run()
	}()
	defer func() {
		close(done) // the reader stops at its next batch...
		<-exited    // ...and no longer reads src when this returns
	}()
	var lastLT LinkType = 1<<32 - 1
	for {
		b := <-full
		r.decodeBatch(b)
		for i := range b.items[:b.n] {
			it := &b.items[i]
			r.count(fs, it.lt, it.ts, &lastLT)
			r.item(fs.Packets, it)
			r.progress(name, fs)
		}
		if b.last {
			return b.stop
		}
		free <- b
	}
}

// decodeBatch makes sure b is decoded: by this goroutine when the reader
// has not claimed it, else by waiting for the reader to finish.
func (r *Replayer) decodeBatch(b *pipeBatchT) {
	for {
		if b.state.CompareAndSwap(batchFramed, batchClaimed) {
			decodeItems(&r.dec, b)
			b.state.Store(batchDecoded)
			return
		}
		b.mu.Lock() // the reader holds it while it decodes b
		//lint:ignore SA2001 the lock is taken only to wait for the reader
		b.mu.Unlock()
		if b.state.Load() == batchDecoded {
			return
		}
	}
}

// item replays one decoded packet, as packet does.
func (r *Replayer) item(n uint64, it *pipeItem) {
	if !it.isIP {
		r.record(n, ReasonNotIP, ReasonNotIP, nil, 0)
		return
	}
	r.expireFrags(it.ts)
	if it.hasKey {
		r.decoded(n, it.ip, it.ts, &it.p, &it.key, it.srcIsA)
		return
	}
	r.decoded(n, it.ip, it.ts, &it.p, nil, false)
}

// decodeItems decodes every IP packet of b and computes its flow key
// (not for IPv4 fragments, which reassembly may replace).
func decodeItems(dec *packet.Decoder, b *pipeBatchT) {
	for i := range b.items[:b.n] {
		it := &b.items[i]
		it.hasKey = false
		if !it.isIP {
			continue
		}
		dec.Decode(it.ip, &it.p)
		if it.p.Kind == packet.IP && (it.p.Version != 4 || it.p.Frag == packet.NotFragment) {
			it.hasKey = true
			it.srcIsA = it.key.setPacket(&it.p)
		}
	}
}

// pipeReader is the reader goroutine's state.
type pipeReader struct {
	src     *source
	full    chan<- *pipeBatchT
	free    <-chan *pipeBatchT
	done    <-chan struct{}
	dec     packet.Decoder
	records uint64        // records read from src so far
	sent    []*pipeBatchT // the batches handed over, oldest first
	ended   bool          // the last batch is sent
}

// run frames batches while there are free ones, decodes the newest
// unclaimed batch when there are not, and returns once the last batch
// is sent and nothing is left to decode, or when done is closed.
func (rd *pipeReader) run() {
	for {
		if !rd.ended {
			select {
			case b := <-rd.free:
				rd.frame(b)
				continue
			default:
			}
		}
		if b := rd.unclaimed(); b != nil {
			rd.decode(b)
			continue
		}
		if rd.ended {
			return
		}
		select {
		case b := <-rd.free:
			rd.frame(b)
		case <-rd.done:
			return
		}
	}
}

// frame fills b with records and hands it over.
func (rd *pipeReader) frame(b *pipeBatchT) {
	if stop := rd.fill(b); stop != nil {
		b.last, b.stop = true, stop
	}
	b.state.Store(batchFramed)
	if len(rd.sent) == pipeBatches {
		rd.sent = append(rd.sent[:0], rd.sent[1:]...)
	}
	rd.sent = append(rd.sent, b)
	rd.ended = b.last
	rd.full <- b // never blocks: full holds every batch there is
}

// unclaimed is the newest batch handed over whose decoding nobody has
// claimed, or nil.
func (rd *pipeReader) unclaimed() *pipeBatchT {
	for i := len(rd.sent) - 1; i >= 0; i-- {
		if b := rd.sent[i]; b.state.Load() == batchFramed {
			return b
		}
	}
	return nil
}

// decode decodes b unless the other side has claimed it meanwhile.
func (rd *pipeReader) decode(b *pipeBatchT) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.state.CompareAndSwap(batchFramed, batchClaimed) {
		return
	}
	decodeItems(&rd.dec, b)
	b.state.Store(batchDecoded)
}

// fill reads up to a batch of records, and says why src stopped early,
// if it did (b.last is set at its end).
func (rd *pipeReader) fill(b *pipeBatchT) (stop *StopError) {
	b.n, b.last, b.stop = 0, false, nil
	src := rd.src
	for b.n < len(b.items) {
		data, lt, ts, err := src.next()
		if err != nil {
			b.last = true
			return stopOf(err, rd.records)
		}
		rd.records++
		it := &b.items[b.n]
		it.ts, it.lt = ts, lt
		it.ip, it.isIP = StripLink(lt, data)
		b.n++
	}
	return nil
}
