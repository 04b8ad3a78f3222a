package replay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Format is a capture file format.
type Format uint8

const (
	FormatPcap Format = iota + 1
	FormatPcapNG
)

func (f Format) String() string {
	switch f {
	case FormatPcap:
		return "pcap"
	case FormatPcapNG:
		return "pcapng"
	}
	return "unknown"
}

// StopError says where a capture stopped being readable: the packets
// before it were replayed, the rest of the file was not.
type StopError struct {
	File   string
	Packet uint64 // 1-based number of the record that could not be read
	Offset int64  // byte offset of that record in the file, -1 when unknown
	Err    error
}

func (e *StopError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("%s: stopped at packet %d (byte offset %d): %v", e.File, e.Packet, e.Offset, e.Err)
	}
	return fmt.Sprintf("%s: stopped at packet %d: %v", e.File, e.Packet, e.Err)
}

func (e *StopError) Unwrap() error { return e.Err }

// errTruncated is the cause of a StopError for a file that ends inside a
// record.
var errTruncated = errors.New("capture truncated inside a record")

// maxSnaplen is the snap length replay accepts whatever the file header
// says, as tcpdump does: writers that ignore their own snaplen are common.
const maxSnaplen = 262144

const (
	pcapHeaderLen          = 24
	pcapRecordLen          = 16
	pcapngMagic            = 0x0A0D0D0A
	ngByteOrderBOM  uint32 = 0x1A2B3C4D
	linkTypeSLL2Low        = LinkSLL2 & 0xFF // gopacket's LinkType is a uint8: 276 arrives as 20
)

// source reads the records of one capture with gopacket's pcapgo readers,
// through their zero-copy calls: the returned data is valid until the
// next call. A classic pcap held in memory (ReplayBytes) has its header
// read by pcapgo and its records sliced out of the bytes in place (mem):
// no copy, and the returned data stays valid as long as the bytes do.
type source struct {
	format Format
	pcap   *pcapgo.Reader
	ng     *pcapgo.NgReader
	link   LinkType // pcap: the header's full 32-bit link type

	mem []byte // the whole capture, when read in place

	buf    *fileBuf // a classic pcap file read in place through a buffer (openBuffered)
	swap   bool     // mem: big-endian records
	factor uint32   // mem: nanoseconds per timestamp fraction unit (1 or 1000)

	// Byte positions, for StopError. pcap offsets are computed from the
	// record lengths; pcapng ones from the bytes the reader consumed.
	off     int64
	cnt     *countingReader
	br      *bufio.Reader
	ra      io.ReaderAt // set when the input allows the pcapng check
	size    int64
	good    int64  // pcapng: bytes of sound blocks from the start
	bad     error  // pcapng: what is wrong at offset good, if anything
	records uint64 // records returned so far
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// openSource detects pcap or pcapng from the first bytes. ra and size,
// when ra is not nil, describe the same bytes as r (r at offset 0): they
// let a pcapng file be checked before gopacket reads it.
func openSource(r io.Reader, ra io.ReaderAt, size int64) (*source, error) {
	cnt := &countingReader{r: r}
	br := bufio.NewReaderSize(cnt, 64<<10)
	s := &source{cnt: cnt, br: br, ra: ra, size: size}
	head, err := br.Peek(pcapHeaderLen)
	if len(head) < 4 {
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("file too short for a capture header")
		}
		return nil, fmt.Errorf("read capture header: %w", err)
	}
	if binary.LittleEndian.Uint32(head[0:4]) == pcapngMagic {
		s.format = FormatPcapNG
		if ra != nil {
			// gopacket's NgReader sizes its buffer from the capture and
			// interface lengths without checking them against the block:
			// check every block first, and read only the sound prefix.
			s.good, s.bad = pcapngCheck(ra, size)
			if s.bad != nil {
				// Start over on the prefix (the peek above read ahead).
				cnt.r, cnt.n = io.NewSectionReader(ra, 0, s.good), 0
				br.Reset(cnt)
			}
		}
		ng, err := newNgReader(br)
		if err != nil {
			return nil, fmt.Errorf("read pcapng section header: %w", err)
		}
		s.ng = ng
		s.off = s.pos()
		return s, nil
	}
	s.format = FormatPcap
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("not a pcap or pcapng file: %w", err)
	}
	// Clamp both ways, as tcpdump does: a small snaplen is often ignored
	// by writers, and a huge one would size gopacket's buffer.
	pr.SetSnaplen(maxSnaplen)
	s.pcap = pr
	s.link = LinkType(pr.LinkType())
	if len(head) == pcapHeaderLen {
		// Read the link type again at full width (gopacket keeps 8 bits).
		switch binary.LittleEndian.Uint32(head[0:4]) {
		case 0xA1B2C3D4, 0xA1B23C4D:
			s.link = LinkType(binary.LittleEndian.Uint32(head[20:24]) & 0xFFFF)
		case 0xD4C3B2A1, 0x4D3CB2A1:
			s.link = LinkType(binary.BigEndian.Uint32(head[20:24]) & 0xFFFF)
		default: // gzip: only gopacket's 8 bits are known
			if s.link == linkTypeSLL2Low {
				s.link = LinkSLL2
			}
		}
	}
	s.off = pcapHeaderLen
	return s, nil
}

// openMem opens a capture held in memory for reading in place, when it is
// a classic pcap file (not compressed); ok is false for anything else,
// which the caller reads through openSource.
func openMem(data []byte) (s *source, ok bool, err error) {
	if len(data) < pcapHeaderLen {
		return nil, false, nil
	}
	var swap bool
	var factor uint32
	switch binary.LittleEndian.Uint32(data[0:4]) {
	case 0xA1B2C3D4:
		factor = 1000
	case 0xA1B23C4D:
		factor = 1
	case 0xD4C3B2A1:
		swap, factor = true, 1000
	case 0x4D3CB2A1:
		swap, factor = true, 1
	default:
		return nil, false, nil
	}
	// pcapgo reads and checks the file header, as for any other capture.
	if _, err := pcapgo.NewReader(bytes.NewReader(data[:pcapHeaderLen])); err != nil {
		return nil, true, fmt.Errorf("not a pcap or pcapng file: %w", err)
	}
	s = &source{format: FormatPcap, mem: data, swap: swap, factor: factor, off: pcapHeaderLen}
	s.link = LinkType(s.u32(data[20:24]) & 0xFFFF) // full width, as openSource reads it
	return s, true, nil
}

func (s *source) u32(b []byte) uint32 {
	v := binary.LittleEndian.Uint32(b)
	if s.swap {
		v = bits.ReverseBytes32(v)
	}
	return v
}

// memNext is next for a pcap read in place. It follows pcapgo's
// ZeroCopyReadPacketData exactly (same checks, same errors, same
// timestamp arithmetic), without copying the record.
func (s *source) memNext() (data []byte, lt LinkType, ts int64, err error) {
	rest := s.mem[s.off:]
	if len(rest) < pcapRecordLen {
		if len(rest) == 0 {
			return nil, 0, 0, io.EOF
		}
		return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: errTruncated}
	}
	caplen, err := s.capLen(rest)
	if err == nil && caplen > len(rest)-pcapRecordLen {
		err = errTruncated
	}
	if err != nil {
		return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: err}
	}
	s.off += pcapRecordLen + int64(caplen)
	s.records++
	return rest[pcapRecordLen : pcapRecordLen+caplen : pcapRecordLen+caplen], s.link, s.stamp(rest), nil
}

// capLen is the captured length a classic pcap record header gives,
// checked as pcapgo checks it (the in-place and the buffered reads share
// it).
func (s *source) capLen(hdr []byte) (int, error) {
	caplen := int(s.u32(hdr[8:12]))
	origlen := int(s.u32(hdr[12:16]))
	switch {
	case caplen > maxSnaplen:
		return 0, fmt.Errorf("capture length exceeds snap length: %d > %d", caplen, maxSnaplen)
	case caplen > origlen:
		return 0, fmt.Errorf("capture length exceeds original packet length: %d > %d", caplen, origlen)
	}
	return caplen, nil
}

// stamp is a classic pcap record's timestamp in nanoseconds, computed as
// pcapgo computes it (the fraction times factor in uint32).
func (s *source) stamp(hdr []byte) int64 {
	sec := s.u32(hdr[0:4])
	frac := s.u32(hdr[4:8]) * s.factor
	return int64(sec)*second + int64(frac)
}

// pos is the byte offset the pcapng reader has consumed up to.
func (s *source) pos() int64 { return s.cnt.n - int64(s.br.Buffered()) }

// next returns the next record. At the clean end of the file it returns
// io.EOF; when the file stops inside a record or a record is corrupt it
// returns a *StopError without the file name (the caller adds it).
func (s *source) next() (data []byte, lt LinkType, ts int64, err error) {
	if s.mem != nil {
		return s.memNext()
	}
	if s.buf != nil {
		return s.bufNext()
	}
	if s.pcap != nil {
		data, ci, err := s.pcap.ZeroCopyReadPacketData()
		if err != nil {
			// A clean end is EOF before any byte of a record header.
			if err == io.EOF && ci.CaptureLength == 0 && ci.Timestamp.IsZero() {
				return nil, 0, 0, io.EOF
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = errTruncated
			}
			return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: err}
		}
		s.off += pcapRecordLen + int64(ci.CaptureLength)
		s.records++
		return data, s.link, ci.Timestamp.UnixNano(), nil
	}
	data, ci, err := s.ngRead()
	if err != nil {
		if err == io.EOF {
			if s.ra == nil {
				return nil, 0, 0, io.EOF // cannot tell; trust the reader
			}
			if s.bad == nil {
				return nil, 0, 0, io.EOF
			}
			return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.good, Err: s.bad}
		}
		return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: err}
	}
	s.off = s.pos()
	s.records++
	lt = LinkType(s.ng.LinkType())
	if len(ci.AncillaryData) > 0 {
		if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
			lt = LinkType(l)
		}
	}
	if lt == linkTypeSLL2Low {
		lt = LinkSLL2
	}
	return data, lt, ci.Timestamp.UnixNano(), nil
}

// declaredLinks are the link types the capture declares, packets or not:
// a pcap header's, or those of the pcapng interfaces read so far.
func (s *source) declaredLinks() []LinkType {
	if s.ng == nil {
		return []LinkType{s.link}
	}
	var lts []LinkType
	for i := range min(s.ng.NInterfaces(), 16) {
		intf, err := s.ng.Interface(i)
		if err != nil {
			break
		}
		lt := LinkType(intf.LinkType)
		if lt == linkTypeSLL2Low {
			lt = LinkSLL2
		}
		lts = append(lts, lt)
	}
	return lts
}

// maxNgInterfaces bounds the interface description blocks of a pcapng
// section: gopacket keeps every one (with its options) in memory, and
// 200,000 of them took 196 MB (issue 16). Real captures have a few.
const maxNgInterfaces = 1 << 16

// maxNgSnaplen bounds a pcapng interface's snap length: gopacket
// allocates that much for its packet buffer.
const maxNgSnaplen = 1 << 24

// pcapngCheck walks the blocks of a pcapng file and returns how many bytes
// from the start hold sound blocks, and what is wrong after them (nil
// when the blocks end exactly at size). Sound: a length that is a multiple
// of 4, at least 12 and within the file; packet blocks whose captured
// length fits the block; interfaces with a plausible snap length.
func pcapngCheck(ra io.ReaderAt, size int64) (int64, error) {
	w := ngWalker{br: bufio.NewReaderSize(io.NewSectionReader(ra, 0, size), 64<<10), order: binary.LittleEndian}
	var pos int64
	for pos < size {
		if size-pos < 12 {
			return pos, errTruncated
		}
		l, err := w.header(size - pos)
		if err != nil {
			return pos, err
		}
		extra, err := w.body(l)
		if err != nil {
			return pos, err
		}
		if _, err := w.br.Discard(int(l - 12 - extra)); err != nil {
			return pos, errTruncated
		}
		pos += l
	}
	return pos, nil
}

// ngWalker reads pcapng blocks for pcapngCheck: the byte order and the
// interfaces' snap lengths of the current section, and the block being
// read (h holds its first 28 bytes, as far as they were read).
type ngWalker struct {
	br    *bufio.Reader
	h     [28]byte
	typ   uint32
	order binary.ByteOrder
	snaps []uint32
}

// header reads a block's type and length (at most left), and takes a
// section header's byte order.
func (w *ngWalker) header(left int64) (int64, error) {
	h := w.h[:12]
	if _, err := io.ReadFull(w.br, h); err != nil {
		return 0, fmt.Errorf("read block header: %w", err)
	}
	w.typ = w.order.Uint32(h[0:4])
	if binary.LittleEndian.Uint32(h[0:4]) == pcapngMagic {
		w.typ = pcapngMagic
		switch ngByteOrderBOM {
		case binary.LittleEndian.Uint32(h[8:12]):
			w.order = binary.LittleEndian
		case binary.BigEndian.Uint32(h[8:12]):
			w.order = binary.BigEndian
		default:
			return 0, errors.New("corrupt section header")
		}
		w.snaps = w.snaps[:0]
	}
	l := int64(w.order.Uint32(h[4:8]))
	if l < 12 || l%4 != 0 {
		return 0, errors.New("corrupt block length")
	}
	if l > left {
		return 0, errTruncated
	}
	return l, nil
}

// body checks the block of length l whose header was just read, and
// returns how many bytes past the first 12 it read.
func (w *ngWalker) body(l int64) (int64, error) {
	body := w.h[8:12] // first 4 bytes after type and length
	switch w.typ {
	case 1: // interface description: link type(2) reserved(2) snaplen(4)
		return w.iface(l)
	case 6: // enhanced packet: iface(4) ts(8) caplen(4) origlen(4)
		return w.packet(l, "corrupt packet block", w.order.Uint32(body))
	case 3: // simple packet: origlen(4)
		if l < 16 || len(w.snaps) == 0 {
			return 0, errors.New("corrupt simple packet block")
		}
		caplen := int64(w.order.Uint32(body))
		if w.snaps[0] != 0 {
			caplen = min(caplen, int64(w.snaps[0]))
		}
		if caplen > l-16 {
			return 0, errors.New("corrupt simple packet block")
		}
	case 2: // obsolete packet block: iface(2) drops(2) ts(8) caplen(4) len(4)
		return w.packet(l, "corrupt packet block", uint32(w.order.Uint16(body[0:2])))
	}
	return 0, nil
}

func (w *ngWalker) iface(l int64) (int64, error) {
	if l < 20 {
		return 0, errors.New("corrupt interface block")
	}
	if _, err := io.ReadFull(w.br, w.h[12:16]); err != nil {
		return 0, errTruncated
	}
	snap := w.order.Uint32(w.h[12:16])
	if snap > maxNgSnaplen {
		return 0, fmt.Errorf("implausible snap length %d", snap)
	}
	if len(w.snaps) >= maxNgInterfaces {
		return 0, fmt.Errorf("more than %d interface blocks in a section", maxNgInterfaces)
	}
	w.snaps = append(w.snaps, snap)
	return 4, nil
}

// packet checks an enhanced or obsolete packet block of interface iface:
// its captured length (bytes 20-24) fits the block and the interface was
// described.
func (w *ngWalker) packet(l int64, corrupt string, iface uint32) (int64, error) {
	if l < 32 {
		return 0, errors.New(corrupt)
	}
	if _, err := io.ReadFull(w.br, w.h[12:28]); err != nil {
		return 0, errTruncated
	}
	if caplen := int64(w.order.Uint32(w.h[20:24])); caplen > l-32 || iface >= uint32(len(w.snaps)) {
		return 0, errors.New(corrupt)
	}
	return 16, nil
}

// errReaderPanic is the cause of a StopError when gopacket's pcapng reader
// panicked on a corrupt file (v1.1.19 divides by zero on some timestamp
// resolutions, for one).
var errReaderPanic = errors.New("corrupt pcapng: the reader failed on it")

// ngRead is the NgReader's zero-copy read with its panics made errors.
func (s *source) ngRead() (data []byte, ci gopacket.CaptureInfo, err error) {
	defer func() {
		if recover() != nil {
			data, err = nil, errReaderPanic
		}
	}()
	return s.ng.ZeroCopyReadPacketData()
}

func newNgReader(br *bufio.Reader) (ng *pcapgo.NgReader, err error) {
	defer func() {
		if recover() != nil {
			ng, err = nil, errReaderPanic
		}
	}()
	return pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
}
