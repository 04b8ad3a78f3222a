// Package suggest turns connections the rules would drop into proposed
// rules: it counts would-drops by (direction, protocol, port or ICMP
// type, peer prefix) and renders each group as an fwctl allow command
// with its count, the most frequent first. fwd in audit mode feeds a
// Table from its verdict path (GET /v1/suggest), `fwctl replay
// --suggest` from a capture's no-match drops; `fwctl suggest` prints
// both the same way.
//
// A Table is fixed in size, safe for concurrent use and lock-free: Add
// allocates nothing and takes no lock, so a queue worker may call it.
package suggest

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// Default aggregation prefix lengths.
const (
	DefaultBits4   = 24
	DefaultBits6   = 64
	DefaultEntries = 4096
)

// Key is what would-drops are grouped by.
type Key struct {
	Dir   direction.Dir `json:"-"`
	Proto ipproto.Proto `json:"-"`
	// Port is the destination port for tcp and udp, the ICMP type for
	// icmp and icmpv6 (ICMP set), 0 otherwise.
	Port uint16       `json:"port,omitempty"`
	ICMP bool         `json:"icmp,omitempty"`
	Peer netip.Prefix `json:"peer"`
}

// Entry is one group of would-drops.
type Entry struct {
	Key
	DirName   string    `json:"dir"`   // in or out
	ProtoName string    `json:"proto"` // tcp, udp, icmp, ...
	Count     uint64    `json:"count"`
	Last      time.Time `json:"last"`
	// Command is the proposed rule in fwctl's grammar.
	Command string `json:"command"`
}

// Options are the aggregation prefix lengths; zero means the default.
type Options struct {
	Bits4, Bits6 int
}

func (o Options) norm() Options {
	if o.Bits4 <= 0 || o.Bits4 > 32 {
		o.Bits4 = DefaultBits4
	}
	if o.Bits6 <= 0 || o.Bits6 > 128 {
		o.Bits6 = DefaultBits6
	}
	return o
}

// KeyOf reduces a lookup key to its group at the prefix lengths of o.
func KeyOf(k filter.Key, o Options) Key {
	o = o.norm()
	bits := o.Bits4
	peer := k.Peer.Unmap()
	if peer.Is6() {
		bits = o.Bits6
	}
	p, _ := peer.Prefix(bits) // an invalid address gives the zero prefix
	out := Key{Dir: k.Dir, Proto: k.Proto, Peer: p}
	switch k.Proto {
	case ipproto.TCP, ipproto.UDP:
		out.Port = k.Port
	case ipproto.ICMP, ipproto.ICMPv6:
		out.Port, out.ICMP = uint16(k.Type), true
	}
	return out
}

// Table counts would-drops in a fixed number of slots. The zero value is
// not ready: use NewTable.
type Table struct {
	opts     Options
	slots    []slot
	overflow atomic.Uint64
}

type slot struct {
	h     atomic.Uint64 // hash of key, 0: free
	ready atomic.Bool   // key is written
	key   Key
	count atomic.Uint64
	last  atomic.Int64 // unix nanoseconds
}

const probes = 16

// NewTable returns a table of n slots (0: DefaultEntries) grouping at
// the prefix lengths of o.
func NewTable(n int, o Options) *Table {
	if n <= 0 {
		n = DefaultEntries
	}
	return &Table{opts: o.norm(), slots: make([]slot, n)}
}

// Options are the table's prefix lengths.
func (t *Table) Options() Options { return t.opts }

// Add counts one would-drop of k at now. When the table is full it is
// counted in Overflow only. It allocates nothing and takes no lock.
func (t *Table) Add(k filter.Key, now time.Time) {
	key := KeyOf(k, t.opts)
	h := hash(key) | 1
	n := uint64(len(t.slots))
	for i := range uint64(probes) {
		s := &t.slots[(h+i)%n]
		cur := s.h.Load()
		if cur == 0 && s.h.CompareAndSwap(0, h) {
			s.key = key
			s.ready.Store(true)
			cur = h
		}
		if cur == h || s.h.Load() == h {
			s.count.Add(1)
			s.last.Store(now.UnixNano())
			return
		}
	}
	t.overflow.Add(1)
}

// Overflow is how many would-drops found no free slot.
func (t *Table) Overflow() uint64 { return t.overflow.Load() }

// Entries returns what the table counted, in no order.
func (t *Table) Entries() []Entry {
	var out []Entry
	for i := range t.slots {
		s := &t.slots[i]
		if !s.ready.Load() {
			continue
		}
		out = append(out, Entry{Key: s.key, Count: s.count.Load(), Last: time.Unix(0, s.last.Load()).UTC()})
	}
	return out
}

// hash is FNV-1a over the key's fields.
func hash(k Key) uint64 {
	h := uint64(14695981039346656037)
	mix := func(b byte) { h = (h ^ uint64(b)) * 1099511628211 }
	mix(byte(k.Dir))
	mix(byte(k.Proto))
	mix(byte(k.Port >> 8))
	mix(byte(k.Port))
	if k.ICMP {
		mix(1)
	}
	a := k.Peer.Addr().As16()
	for _, b := range a {
		mix(b)
	}
	mix(byte(k.Peer.Bits()))
	return h
}

// Aggregate merges entries into groups at the prefix lengths of o
// (coarser than those they were counted at; a finer length keeps the
// counted prefix), renders each as an fwctl command and sorts them by
// count, the largest first, then by direction, protocol, port and peer.
func Aggregate(entries []Entry, o Options) []Entry {
	o = o.norm()
	merged := map[Key]*Entry{}
	for _, e := range entries {
		k := e.Key
		bits := o.Bits4
		if k.Peer.Addr().Is6() {
			bits = o.Bits6
		}
		if bits < k.Peer.Bits() {
			k.Peer, _ = k.Peer.Addr().Prefix(bits)
		}
		m := merged[k]
		if m == nil {
			m = &Entry{Key: k}
			merged[k] = m
		}
		m.Count += e.Count
		if e.Last.After(m.Last) {
			m.Last = e.Last
		}
	}
	out := make([]Entry, 0, len(merged))
	for _, m := range merged {
		m.DirName, m.ProtoName = dirName(m.Dir), m.Proto.String()
		m.Command = Command(m.Key)
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(
			cmp.Compare(b.Count, a.Count),
			cmp.Compare(a.Dir, b.Dir),
			cmp.Compare(a.Proto, b.Proto),
			cmp.Compare(a.Port, b.Port),
			a.Peer.Addr().Compare(b.Peer.Addr()),
			cmp.Compare(a.Peer.Bits(), b.Peer.Bits()))
	})
	return out
}

func dirName(d direction.Dir) string {
	if d == direction.Egress {
		return "out"
	}
	return "in"
}

// Command renders k as an fwctl allow command, e.g.
// "fwctl allow from 198.51.100.0/24 to any port 443 proto tcp" or
// "fwctl allow out to 192.0.2.0/24 port 53 proto udp".
func Command(k Key) string {
	var b strings.Builder
	b.WriteString("fwctl allow ")
	peer := k.Peer.String()
	if k.Peer.Bits() == 0 {
		peer = "any"
	}
	if k.Dir == direction.Egress {
		fmt.Fprintf(&b, "out to %s", peer)
	} else {
		fmt.Fprintf(&b, "from %s to any", peer)
	}
	switch {
	case k.ICMP:
		fmt.Fprintf(&b, " proto %s type %d", k.Proto, k.Port)
	case k.Proto == ipproto.TCP || k.Proto == ipproto.UDP:
		fmt.Fprintf(&b, " port %d proto %s", k.Port, k.Proto)
	default:
		fmt.Fprintf(&b, " proto %s", k.Proto)
	}
	return b.String()
}

// Format writes entries as Aggregate returns them: one command a line,
// with its count and when the last was seen.
func Format(entries []Entry) string {
	if len(entries) == 0 {
		return ""
	}
	width := 0
	for _, e := range entries {
		width = max(width, len(e.Command))
	}
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%-*s   # %d flow%s", width, e.Command, e.Count, plural(e.Count))
		if !e.Last.IsZero() {
			fmt.Fprintf(&b, ", last %s", e.Last.UTC().Format(time.RFC3339))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func plural(n uint64) string {
	if n == 1 {
		return ""
	}
	return "s"
}
