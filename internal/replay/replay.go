// Package replay runs recorded traffic (pcap and pcapng captures) through
// a compiled rule table the way fwd would see it on a host, to answer
// "what would these rules have done to this traffic?".
//
// Captures are read with gopacket's pcapgo. A classic pcap already in
// memory (ReplayBytes) is read in place: pcapgo reads its file header
// and the records are sliced out of the bytes, not copied; a classic pcap
// file (ReplayFile) is read through a large buffer and its records sliced
// out of the buffer the same way. Both give the same results as reading
// the capture through pcapgo (tests hold them together). With
// Options.Parallel a capture in memory is framed and decoded on a second
// goroutine (see pipeline.go), with the same results again.
// Frames are stripped of their link layer by hand (Ethernet with VLAN
// tags, raw IP, Linux SLL and SLL2, BSD loopback), decoded with
// internal/packet, and IPv4 fragments are reassembled with gopacket's
// ip4defrag. The host is emulated as a security group: a packet to a host
// address is ingress, from one egress, other packets are transit; without
// host addresses the first packet of each flow is taken as ingress to its
// destination. A flow starts when its first packet is accepted by the
// table; its later packets, both ways, are accepted as established, and
// ICMP errors quoting it as related. Idle timeouts run on capture time
// (see the Timeout constants). Each capture is replayed on its own: flows
// and fragments do not carry over from one file to the next, since their
// clocks are unrelated.
//
// Fragments: each captured packet gets exactly one verdict. An IPv4
// fragment that waits for the rest of its datagram gets the reassembled
// datagram's verdict when the datagram completes, or drop (malformed) if
// it never does within TimeoutFragment or before the capture ends. IPv6 is
// not reassembled: later fragments share their first fragment's verdict.
//
// Outside fragment reassembly, replaying a packet allocates nothing.
package replay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/suggest"
)

// Options configure a Replayer. The zero value (with a table given to
// New) replays without host addresses, without a verdict file.
type Options struct {
	// Hosts are the emulated host's addresses. Empty: the first packet of
	// each flow is taken as ingress to its destination.
	Hosts []netip.Addr
	// MaxFlows bounds the flow table (DefaultMaxFlows when 0). A flow
	// that finds the table full is not tracked and counted as overflow:
	// its later packets are judged by the rules one by one.
	MaxFlows int
	// Diff, when set, is a second table replayed over the same packets;
	// the flows whose verdict differs are listed in Summary.Diff.
	Diff Matcher
	// Verdicts, when set, receives one JSON line per packet in capture
	// order: {"n":1,"verdict":"accept","reason":"rule"}. n is the packet's
	// number in its capture (Wireshark's frame number).
	Verdicts io.Writer
	// LabelVerdicts adds "file":NAME to each verdict line, for runs over
	// several captures.
	LabelVerdicts bool
	// Progress, when set, is called every ProgressEvery packets.
	Progress func(Progress)
	// Suggest, when set, counts the new connections the rules drop (not
	// those of Diff), grouped as fwctl suggest shows them.
	Suggest *suggest.Table
	// Parallel frames and decodes a capture in memory (ReplayBytes, a
	// classic pcap) on a second goroutine, sharing the decoding with the
	// calling one, which judges the packets in capture order: the
	// summary, the verdicts and every flow's state are the same as
	// without it. It does not pay on a machine whose second CPU is busy
	// (see bench/RESULTS.md, issue 15); fwctl leaves it off.
	Parallel bool
}

// ProgressEvery is how many packets pass between Progress calls.
const ProgressEvery = 1 << 16

// Progress is a running count, for a progress line.
type Progress struct {
	File    string
	Packets uint64 // in this capture so far
	Total   uint64 // in the whole run so far
}

// Replayer replays captures, one after the other, and sums up. Not safe
// for concurrent use.
type Replayer struct {
	opts    Options
	dec     packet.Decoder
	p       packet.Packet
	key     flowKey // p's
	main    *sim
	other   *sim
	frag    *defrag
	vlog    *verdictLog
	changes *changeSet
	files   []FileStats
	elapsed time.Duration
	total   uint64
	file    string
	inPlace bool         // the capture is read in place: packets stay put until it ends
	batches []pipeBatchT // Options.Parallel's, made at its first capture
}

// New returns a Replayer for table m.
func New(m Matcher, opts Options) *Replayer {
	if opts.MaxFlows <= 0 {
		opts.MaxFlows = DefaultMaxFlows
	}
	r := &Replayer{
		opts: opts,
		main: newSim(m, opts.Hosts, opts.MaxFlows),
		frag: newDefrag(),
	}
	r.main.drops = opts.Suggest
	if opts.Diff != nil {
		r.other = newSim(opts.Diff, opts.Hosts, opts.MaxFlows)
		r.changes = newChangeSet(opts.MaxFlows)
	}
	if opts.Verdicts != nil {
		r.vlog = newVerdictLog(opts.Verdicts)
	}
	return r
}

// ReplayFile replays the capture at path. A capture that stops early
// (truncated or corrupt) returns a *StopError after everything before the
// damage was replayed; a file that is not a capture at all returns another
// error and changes nothing.
func (r *Replayer) ReplayFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open capture: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open capture: %w", err)
	}
	start := time.Now()
	if src, ok, err := openBuffered(f); ok {
		return r.run(path, start, src, err)
	}
	return r.replay(path, f, f, st.Size())
}

// Replay replays one capture read from rd; name labels it in the
// summary and errors. When rd also has ReadAt and Size (bytes.Reader,
// io.SectionReader), a truncated pcapng is told from a complete one.
func (r *Replayer) Replay(name string, rd io.Reader) error {
	if s, ok := rd.(interface {
		io.ReaderAt
		Size() int64
	}); ok {
		return r.replay(name, rd, s, s.Size())
	}
	return r.replay(name, rd, nil, 0)
}

// ReplayBytes replays one capture held in memory, as Replay does with a
// bytes.Reader over data, with the same results. A classic pcap is read
// in place: pcapgo reads its file header, and its records are sliced out
// of data without a copy, so data must not change during the call.
// pcapng and compressed pcap are read by pcapgo as Replay reads them.
func (r *Replayer) ReplayBytes(name string, data []byte) error {
	start := time.Now()
	src, ok, err := openMem(data)
	if !ok {
		br := bytes.NewReader(data)
		src, err = openSource(br, br, br.Size())
	}
	return r.run(name, start, src, err)
}

func (r *Replayer) replay(name string, rd io.Reader, ra io.ReaderAt, size int64) error {
	start := time.Now()
	src, err := openSource(rd, ra, size)
	return r.run(name, start, src, err)
}

// run replays the capture src, opened at start (err: it could not be).
func (r *Replayer) run(name string, start time.Time, src *source, err error) error {
	defer func() { r.elapsed += time.Since(start) }()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r.main.reset()
	if r.other != nil {
		r.other.reset()
	}
	r.file = name
	r.inPlace = src.mem != nil
	defer func() { r.inPlace = false }()
	if r.vlog != nil && r.opts.LabelVerdicts {
		r.vlog.label = `,"file":` + jsonString(name)
	}
	fs := FileStats{Path: name, Format: src.format.String(), Complete: true}
	stop := r.packets(name, src, &fs)
	for _, h := range r.frag.expire(0, true) {
		r.resolveHeld(h, ReasonMalformed, ReasonMalformed)
	}
	if len(fs.LinkTypes) == 0 {
		// No packet told it: the file's header or interfaces do.
		for _, lt := range src.declaredLinks() {
			fs.addLink(lt)
		}
	}
	r.total += fs.Packets
	if stop != nil {
		stop.File = name
		fs.Complete = false
		fs.Stop = &StopInfo{Packet: stop.Packet, Offset: stop.Offset, Error: stop.Err.Error()}
	}
	r.files = append(r.files, fs)
	if r.vlog != nil {
		if err := r.vlog.flush(); err != nil {
			return fmt.Errorf("write verdicts: %w", err)
		}
	}
	if stop != nil {
		return stop
	}
	return nil
}

// packets replays every packet of src, counting them and their link
// types and times in fs, and returns why it stopped before the end (nil
// at the end). A capture read in place is read and decoded on a second
// goroutine when Options.Parallel says so (see pipeline.go).
func (r *Replayer) packets(name string, src *source, fs *FileStats) *StopError {
	if r.opts.Parallel && src.mem != nil {
		return r.pipelined(name, src, fs)
	}
	var lastLT LinkType = 1<<32 - 1
	for {
		data, lt, ts, err := src.next()
		if err != nil {
			return stopOf(err, fs.Packets)
		}
		r.count(fs, lt, ts, &lastLT)
		r.packet(fs.Packets, data, lt, ts)
		r.progress(name, fs)
	}
}

// stopOf is why a capture stopped when src.next returned err after n
// packets: nil for its clean end.
func stopOf(err error, n uint64) *StopError {
	if err == io.EOF {
		return nil
	}
	var stop *StopError
	if !errors.As(err, &stop) {
		stop = &StopError{Packet: n + 1, Offset: -1, Err: err}
	}
	return stop
}

// count counts one more packet in fs, of link type lt at ts (lastLT is
// the previous packet's).
func (r *Replayer) count(fs *FileStats, lt LinkType, ts int64, lastLT *LinkType) {
	fs.Packets++
	if lt != *lastLT || fs.First == 0 {
		countFirst(fs, lt, ts, lastLT)
	}
	fs.Last = ts
}

// countFirst is count's rare part: a link type lt that differs from the
// previous packet's, or the first time. (The per-packet functions here
// call out to what is rare, so that they stay small enough to inline
// into the loop over packets; noinline keeps it out of count.)
//
//go:noinline
func countFirst(fs *FileStats, lt LinkType, ts int64, lastLT *LinkType) {
	if lt != *lastLT {
		fs.addLink(lt)
		*lastLT = lt
	}
	if fs.First == 0 {
		fs.First = ts
	}
}

// progress reports progress every ProgressEvery packets.
func (r *Replayer) progress(name string, fs *FileStats) {
	if fs.Packets%ProgressEvery == 0 {
		r.report(name, fs)
	}
}

// report calls Options.Progress, if set (noinline keeps it out of
// progress, which inlines).
//
//go:noinline
func (r *Replayer) report(name string, fs *FileStats) {
	if r.opts.Progress != nil {
		r.opts.Progress(Progress{File: name, Packets: fs.Packets, Total: r.total + fs.Packets})
	}
}

// packet replays one captured frame.
func (r *Replayer) packet(n uint64, data []byte, lt LinkType, ts int64) {
	ip, ok := StripLink(lt, data)
	if !ok {
		r.record(n, ReasonNotIP, ReasonNotIP, nil, 0)
		return
	}
	r.expireFrags(ts)
	r.dec.Decode(ip, &r.p)
	r.decoded(n, ip, ts, &r.p, nil, false)
}

// expireFrags gives the IPv4 fragments that waited too long by ts their
// verdict: malformed.
func (r *Replayer) expireFrags(ts int64) {
	if len(r.frag.pending) != 0 { // the common case, checked here where it inlines
		r.expireHeld(ts)
	}
}

func (r *Replayer) expireHeld(ts int64) {
	for _, h := range r.frag.expire(ts, false) {
		r.resolveHeld(h, ReasonMalformed, ReasonMalformed)
	}
}

// decoded replays packet n, whose IP bytes ip were decoded into p. k,
// when not nil, is p's flow key and srcIsA its side, already computed
// (never for an IPv4 fragment).
func (r *Replayer) decoded(n uint64, ip []byte, ts int64, p *packet.Packet, k *flowKey, srcIsA bool) {
	if p.Kind != packet.IP {
		r.record(n, ReasonMalformed, ReasonMalformed, nil, 0)
		return
	}
	var h *held
	if p.Version == 4 && p.Frag != packet.NotFragment {
		if p != &r.p {
			r.p = *p // the reassembled datagram is decoded into r.p
			p = &r.p
		}
		res, hd, whole := r.frag.add(ip, ts, r.inPlace)
		switch res {
		case fragBad:
			r.record(n, ReasonMalformed, ReasonMalformed, nil, 0)
			return
		case fragHeld:
			if r.vlog != nil {
				hd.slots = append(hd.slots, r.vlog.reserve(n))
			}
			return
		case fragDone:
			h = hd
			r.dec.Decode(whole, p)
			if p.Kind != packet.IP {
				r.record(n, ReasonMalformed, ReasonMalformed, nil, 0)
				r.resolveHeld(h, ReasonMalformed, ReasonMalformed)
				return
			}
		}
		k = nil
	}
	if k == nil {
		k = &r.key
		srcIsA = k.setPacket(p)
	}
	ra := r.main.judge(p, k, srcIsA, ts)
	rb := ra
	if r.other != nil {
		rb = r.other.judge(p, k, srcIsA, ts)
	}
	r.record(n, ra, rb, p, ts)
	r.resolveHeld(h, ra, rb)
}

// record counts packet n.
func (r *Replayer) record(n uint64, ra, rb Reason, p *packet.Packet, ts int64) {
	r.main.count(ra, 1)
	if r.other != nil {
		r.other.count(rb, 1)
		if ra.Outcome() != rb.Outcome() && p != nil {
			r.changes.add(p, r.file, n, ts, ra, rb, 1)
		}
	}
	if r.vlog != nil {
		r.vlog.put(n, ra)
	}
}

// resolveHeld gives held fragments their datagram's verdict, and hands h
// back to the defragmenter.
func (r *Replayer) resolveHeld(h *held, ra, rb Reason) {
	if h != nil { // checked here, where it inlines: h is nil for most packets
		r.resolve(h, ra, rb)
	}
}

func (r *Replayer) resolve(h *held, ra, rb Reason) {
	defer r.frag.recycle(h)
	r.main.count(ra, uint64(h.count))
	if r.other != nil {
		r.other.count(rb, uint64(h.count))
		if ra.Outcome() != rb.Outcome() {
			r.changes.addCount(&r.p, uint64(h.count))
		}
	}
	if r.vlog != nil {
		for _, s := range h.slots {
			r.vlog.fill(s, ra)
		}
	}
}
