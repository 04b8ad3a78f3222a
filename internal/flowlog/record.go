package flowlog

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// Record is one decided new flow: the first packet of a connection, as
// fwd saw it, and the verdict. It is a fixed-size value; copying it
// allocates nothing.
type Record struct {
	Time     time.Time // when fwd decided
	Accept   bool      // ACCEPT, else REJECT
	Proto    ipproto.Proto
	Src, Dst netip.Addr // the packet's own source and destination
	SrcPort  uint16     // zero for protocols without ports
	DstPort  uint16
	// Length is the packet's IP length (header included); zero when
	// unknown, written as "-" with packets "-" too.
	Length int
}

// Version is the flow log format version fwd writes: AWS's default format.
const Version = 2

// Header names the fields of a line, in order, as AWS does.
const Header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

// AppendLine appends r as one AWS version 2 line, newline included.
//
// Fields fwd cannot know are written "-", as AWS writes unknowns:
// account-id and interface-id. packets is 1 and bytes the IP length of
// the one packet fwd decided (the flow's first): fwd never sees the
// rest of a flow, which the kernel passes by itself. start and end are
// both the second of the decision.
func AppendLine(b []byte, r Record) []byte {
	b = strconv.AppendInt(b, Version, 10)
	b = append(b, " - - "...)
	b = r.Src.AppendTo(b)
	b = append(b, ' ')
	b = r.Dst.AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(r.SrcPort), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(r.DstPort), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(r.Proto), 10)
	if r.Length > 0 {
		b = append(b, " 1 "...)
		b = strconv.AppendInt(b, int64(r.Length), 10)
	} else {
		b = append(b, " - -"...)
	}
	s := r.Time.Unix()
	b = append(b, ' ')
	b = strconv.AppendInt(b, s, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, s, 10)
	if r.Accept {
		b = append(b, " ACCEPT OK\n"...)
	} else {
		b = append(b, " REJECT OK\n"...)
	}
	return b
}

// AppendSkipData appends the SKIPDATA line that stands for n records not
// written between start and end (rate-limited, or dropped because the
// buffer was full). As in AWS's SKIPDATA records, the flow fields and the
// action are "-"; the packets field holds n, the number of first packets
// (one per flow) the skipped records stood for.
func AppendSkipData(b []byte, n uint64, start, end time.Time) []byte {
	b = strconv.AppendInt(b, Version, 10)
	b = append(b, " - - - - - - - "...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, " - "...)
	s, e := start.Unix(), end.Unix()
	if e < s {
		e = s
	}
	b = strconv.AppendInt(b, s, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e, 10)
	b = append(b, " - SKIPDATA\n"...)
	return b
}
