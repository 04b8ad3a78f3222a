package replay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// bufferedSize is the read buffer of a capture file read in place
// through read(2): the largest record (maxSnaplen and its header) fits.
const bufferedSize = 512 << 10

// openBuffered opens a classic, uncompressed pcap file to be read through
// a large buffer, its records parsed in the buffer as memNext parses them
// in memory (same checks, same errors, same timestamps): no pcapgo call
// and no copy per record. ok is false for anything else, with f back at
// its start for openSource.
func openBuffered(f *os.File) (s *source, ok bool, err error) {
	br := bufio.NewReaderSize(f, bufferedSize)
	head, _ := br.Peek(pcapHeaderLen)
	s, ok, err = openMem(head)
	if !ok || err != nil {
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			return nil, true, fmt.Errorf("open capture: %w", serr)
		}
		return nil, ok, err
	}
	if _, err := br.Discard(pcapHeaderLen); err != nil {
		return nil, true, fmt.Errorf("read capture header: %w", err)
	}
	s.mem, s.buf = nil, br
	return s, true, nil
}

// bufNext is next for a capture read through s.buf. The record stays in
// the buffer, valid until the next call.
func (s *source) bufNext() (data []byte, lt LinkType, ts int64, err error) {
	if s.pending > 0 {
		if _, err := s.buf.Discard(s.pending); err != nil {
			return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: err}
		}
		s.pending = 0
	}
	hdr, err := s.buf.Peek(pcapRecordLen)
	if len(hdr) < pcapRecordLen {
		switch {
		case len(hdr) == 0 && errors.Is(err, io.EOF):
			return nil, 0, 0, io.EOF
		case !errors.Is(err, io.EOF):
			return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: err}
		}
		return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: errTruncated}
	}
	sec := s.u32(hdr[0:4])
	frac := s.u32(hdr[4:8]) * s.factor // uint32, as pcapgo computes it
	caplen := int(s.u32(hdr[8:12]))
	origlen := int(s.u32(hdr[12:16]))
	switch {
	case caplen > maxSnaplen:
		err = fmt.Errorf("capture length exceeds snap length: %d > %d", caplen, maxSnaplen)
	case caplen > origlen:
		err = fmt.Errorf("capture length exceeds original packet length: %d > %d", caplen, origlen)
	}
	if err != nil {
		return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: err}
	}
	n := pcapRecordLen + caplen
	rec, err := s.buf.Peek(n)
	if len(rec) < n {
		if !errors.Is(err, io.EOF) {
			return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: err}
		}
		return nil, 0, 0, &StopError{Packet: s.records + 1, Offset: s.off, Err: errTruncated}
	}
	s.pending = n
	s.off += int64(n)
	s.records++
	return rec[pcapRecordLen:n:n], s.link, int64(sec)*second + int64(frac), nil
}
