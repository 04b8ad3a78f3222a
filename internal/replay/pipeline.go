package replay

import (
	"runtime/debug"

	"github.com/fwd-project/fwd/internal/packet"
)

// The pipeline (Options.Parallel): a reader goroutine frames the records
// of a capture read in place, strips their link layer, decodes them and
// computes their flow keys, in batches; the Replayer's goroutine takes
// the batches in order and does everything that has state (fragment
// reassembly, the flow tables, the counters, the verdict log) exactly as
// the sequential path does. Decoding is a pure function of the packet's
// bytes, so moving it changes nothing but the time.

// pipeBatch is how many packets travel together, and pipeBatches how many
// batches are in flight: enough for either side to run on while the
// other is descheduled, few enough to stay in cache.
const (
	pipeBatch   = 256
	pipeBatches = 8
)

// pipeItem is one captured packet, read and decoded.
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

// pipeBatchT is a run of packets in capture order; the last batch of a
// capture has last set, and stop when the capture stopped early.
type pipeBatchT struct {
	items []pipeItem
	n     int
	last  bool
	stop  *StopError
}

// pipelined is packets for a capture read in place, with the reading and
// decoding on a second goroutine.
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
		readBatches(src, full, free, done)
	}()
	defer func() {
		close(done) // the reader stops at its next batch...
		<-exited    // ...and no longer reads src when this returns
	}()
	var lastLT LinkType = 1<<32 - 1
	for {
		b := <-full
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

// item replays one packet the reader decoded, as packet does.
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

// readBatches is the reader goroutine: it fills the free batches with
// the records of src until its end, or until done is closed.
func readBatches(src *source, full chan<- *pipeBatchT, free <-chan *pipeBatchT, done <-chan struct{}) {
	var dec packet.Decoder
	var records uint64
	for {
		var b *pipeBatchT
		select {
		case b = <-free:
		case <-done:
			return
		}
		if stop := fillBatch(src, &dec, b, &records); stop != nil {
			b.last, b.stop = true, stop
		}
		full <- b // never blocks: full holds every batch there is
		if b.last {
			return
		}
	}
}

// fillBatch reads up to a batch of records, and says why src stopped
// early, if it did (b.last is set at its end); records counts those read
// from src so far.
func fillBatch(src *source, dec *packet.Decoder, b *pipeBatchT, records *uint64) (stop *StopError) {
	b.n = 0
	if src.mapped != nil {
		defer debug.SetPanicOnFault(faultGuard())
		defer recoverFault(&stop, func() uint64 { return *records })
	}
	for b.n < len(b.items) {
		data, lt, ts, err := src.next()
		if err != nil {
			b.last = true
			return stopOf(err, *records)
		}
		*records++
		it := &b.items[b.n]
		it.ts, it.lt, it.hasKey = ts, lt, false
		ip, ok := StripLink(lt, data)
		it.ip, it.isIP = ip, ok
		if ok {
			dec.Decode(ip, &it.p)
			if it.p.Kind == packet.IP && (it.p.Version != 4 || it.p.Frag == packet.NotFragment) {
				it.hasKey = true
				it.srcIsA = it.key.setPacket(&it.p)
			}
		}
		b.n++ // only now: a fault above leaves the item out
	}
	if src.mapped != nil {
		src.mapped.read.Store(src.off)
	}
	return nil
}
