package replay

import (
	"bufio"
	"io"
	"strconv"
)

// verdictLog writes one JSON line per packet in capture order. A held
// IPv4 fragment has no verdict until its datagram completes, so from the
// first held fragment on lines wait in a queue until every line before
// them is known; with no fragment pending, lines go straight out.
type verdictLog struct {
	w     *bufio.Writer
	q     []vEntry
	head  int    // q[head:] is the queue
	base  uint64 // slot number of q[head]
	next  uint64 // slot number of the next line
	open  int    // queued lines without a verdict yet
	label string // `,"file":"..."` for the current capture, or empty
	line  []byte
}

type vEntry struct {
	n     uint64
	label string
	r     Reason
	set   bool
}

func newVerdictLog(w io.Writer) *verdictLog {
	return &verdictLog{w: bufio.NewWriterSize(w, 64<<10), line: make([]byte, 0, 128)}
}

// put writes (or queues) the line of packet n, whose reason is known.
func (l *verdictLog) put(n uint64, r Reason) {
	l.next++
	if l.open == 0 {
		l.write(n, l.label, r)
		l.base = l.next
		return
	}
	l.q = append(l.q, vEntry{n: n, label: l.label, r: r, set: true})
}

// reserve queues the line of packet n, whose reason comes later through
// fill, and returns its slot.
func (l *verdictLog) reserve(n uint64) uint64 {
	slot := l.next
	l.next++
	l.q = append(l.q, vEntry{n: n, label: l.label})
	l.open++
	return slot
}

// fill gives a reserved line its reason and writes what is now ready.
func (l *verdictLog) fill(slot uint64, r Reason) {
	e := &l.q[l.head+int(slot-l.base)]
	if e.set {
		return
	}
	e.r, e.set = r, true
	l.open--
	for l.head < len(l.q) && l.q[l.head].set {
		e := &l.q[l.head]
		l.write(e.n, e.label, e.r)
		l.head++
		l.base++
	}
	if l.head == len(l.q) {
		l.q, l.head = l.q[:0], 0
	}
}

func (l *verdictLog) write(n uint64, label string, r Reason) {
	b := append(l.line[:0], `{"n":`...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `,"verdict":"`...)
	b = append(b, r.Outcome()...)
	b = append(b, `","reason":"`...)
	b = append(b, r.String()...)
	b = append(b, '"')
	b = append(b, label...)
	b = append(b, "}\n"...)
	l.line = b
	l.w.Write(b) // bufio keeps the first error; flush reports it
}

func (l *verdictLog) flush() error { return l.w.Flush() }
