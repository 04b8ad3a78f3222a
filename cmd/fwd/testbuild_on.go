//go:build fwdtest

package main

import (
	"encoding/binary"
	"flag"
	"sync/atomic"

	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// testOptions are the options of a test build (go build -tags fwdtest),
// which the end-to-end tests of the queue watchdog use to freeze a
// queue's reader. A normal build has none of them.
type testOptions struct {
	// stallPort: the reader that gets an IPv4 tcp or udp packet to this
	// port blocks in its handler for good (0: never).
	stallPort uint
	// stallOnce: only the first such packet blocks.
	stallOnce bool
	stalled   *atomic.Bool
	// shortTTL lets --store-lease-ttl go below 15s (down to 1s).
	shortTTL bool
}

func (o *testOptions) allowShortTTL() bool { return o.shortTTL }

func (o *testOptions) register(fs *flag.FlagSet) {
	fs.UintVar(&o.stallPort, "test-stall-port", 0, "test build: the queue reader that gets a new IPv4 connection to this `port` blocks for good")
	fs.BoolVar(&o.stallOnce, "test-stall-once", false, "test build: only the first connection to --test-stall-port blocks its reader")
	fs.BoolVar(&o.shortTTL, "test-short-lease", false, "test build: let --store-lease-ttl go below 15s")
	o.stalled = new(atomic.Bool)
}

func (o *testOptions) wrapQueue(q nfq.Queue) nfq.Queue {
	if o.stallPort == 0 {
		return q
	}
	return &stallQueue{Queue: q, o: o}
}

// stallQueue is a queue whose handler blocks on a packet to the stall
// port. It keeps the queue's Abandon and Turns.
type stallQueue struct {
	nfq.Queue
	o *testOptions
}

func (q *stallQueue) Start(h nfq.Handler) error {
	return q.Queue.Start(func(m *nfq.Msg) verdict.Verdict {
		if dstPort(m.Payload) == uint16(q.o.stallPort) && (!q.o.stallOnce || q.o.stalled.CompareAndSwap(false, true)) {
			select {} // the frozen reader
		}
		return h(m)
	})
}

func (q *stallQueue) Abandon() error {
	if a, ok := q.Queue.(nfq.Abandoner); ok {
		return a.Abandon()
	}
	return q.Queue.Close()
}

func (q *stallQueue) Turns() uint64 {
	if t, ok := q.Queue.(nfq.Turner); ok {
		return t.Turns()
	}
	return 0
}

// dstPort is the tcp or udp destination port of an IPv4 packet, 0 for
// anything else.
func dstPort(p []byte) uint16 {
	if len(p) < 20 || p[0]>>4 != 4 || (p[9] != 6 && p[9] != 17) {
		return 0
	}
	ihl := int(p[0]&0xf) * 4
	if len(p) < ihl+4 {
		return 0
	}
	return binary.BigEndian.Uint16(p[ihl+2:])
}
