package replay

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// bufferedSize is the read buffer of a capture file read in place
// through read(2): the largest record (maxSnaplen and its header) fits.
const bufferedSize = 512 << 10

// readSize is the most one read(2) asks for: records are parsed while
// the bytes just copied are still in the CPU's cache (a 512 KiB read
// leaves its first half in L3 by the time the parser gets there).
// Measured faster than a whole-buffer read for small packets, the same
// for large ones (issue 15).
const readSize = 64 << 10

// fileBuf is a capture file's read buffer, managed by hand rather than
// through bufio: a record that is already in the buffer is framed with a
// few compares and no call (bufio's two Peeks and a Discard a record were
// a tenth of a replay of small packets, issue 15). buf[r:w] is what was
// read and not yet consumed.
type fileBuf struct {
	f    io.Reader
	buf  []byte
	r, w int
	err  error // the read error that stopped the filling, once there is one
}

// fill makes at least n bytes available at buf[r:] (n <= len(buf)),
// reading up to readSize bytes at a time. Short of n, it returns what there is
// and why: the read error, io.EOF at the end of the file, or
// io.ErrNoProgress after many empty reads, as bufio.Reader does.
func (b *fileBuf) fill(n int) ([]byte, error) {
	if b.w-b.r >= n {
		return b.buf[b.r:b.w], nil
	}
	if b.r+n > len(b.buf) {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	for empty := 0; b.w-b.r < n && b.err == nil; {
		m, err := b.f.Read(b.buf[b.w:min(len(b.buf), b.w+readSize)])
		if m < 0 || m > len(b.buf)-b.w {
			err = errors.New("capture file read returned a bad count")
			m = 0
		}
		b.w += m
		switch {
		case err != nil:
			b.err = err
		case m == 0:
			if empty++; empty >= 100 {
				b.err = io.ErrNoProgress
			}
		}
	}
	if b.w-b.r >= n {
		return b.buf[b.r:b.w], nil
	}
	return b.buf[b.r:b.w], b.err
}

// openBuffered opens a classic, uncompressed pcap file to be read through
// a large buffer, its records parsed in the buffer as memNext parses them
// in memory (same checks, same errors, same timestamps): no pcapgo call
// and no copy per record. ok is false for anything else, with f back at
// its start for openSource.
func openBuffered(f *os.File) (s *source, ok bool, err error) {
	fb := &fileBuf{f: f, buf: make([]byte, bufferedSize)}
	head, _ := fb.fill(pcapHeaderLen)
	s, ok, err = openMem(head[:min(len(head), pcapHeaderLen)])
	if !ok || err != nil {
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			return nil, true, fmt.Errorf("open capture: %w", serr)
		}
		return nil, ok, err
	}
	fb.r += pcapHeaderLen
	s.mem, s.buf = nil, fb
	return s, true, nil
}

// bufNext is next for a capture read through s.buf. The record stays in
// the buffer, valid until the next call.
func (s *source) bufNext() (data []byte, lt LinkType, ts int64, err error) {
	b := s.buf
	rest := b.buf[b.r:b.w]
	if len(rest) >= pcapRecordLen {
		// The common case: the whole record is in the buffer already.
		caplen := int(s.u32(rest[8:12]))
		if n := pcapRecordLen + caplen; caplen <= maxSnaplen && n <= len(rest) &&
			caplen <= int(s.u32(rest[12:16])) {
			return s.bufRecord(rest, n)
		}
	}
	hdr, err := b.fill(pcapRecordLen)
	if len(hdr) < pcapRecordLen {
		switch {
		case len(hdr) == 0 && errors.Is(err, io.EOF):
			return nil, 0, 0, io.EOF
		case !errors.Is(err, io.EOF):
			return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: err}
		}
		return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: errTruncated}
	}
	caplen, err := s.capLen(hdr)
	if err != nil {
		return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: err}
	}
	n := pcapRecordLen + caplen
	rec, err := b.fill(n)
	if len(rec) < n {
		if !errors.Is(err, io.EOF) {
			return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: err}
		}
		return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: errTruncated}
	}
	return s.bufRecord(rec, n)
}

// bufRecord returns the record of n bytes at the start of rec, which is
// s.buf's unread bytes, and consumes it.
func (s *source) bufRecord(rec []byte, n int) (data []byte, lt LinkType, ts int64, err error) {
	s.buf.r += n
	s.off += int64(n)
	s.records++
	return rec[pcapRecordLen:n:n], s.link, s.stamp(rec), nil
}
