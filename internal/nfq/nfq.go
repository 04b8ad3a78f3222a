// Package nfq connects fwd to the kernel's netfilter queues. It is the only
// package that imports the queue libraries (go-nfqueue, mdlayher/netlink).
//
// The engine sees a queue through the Queue interface: Run hands every
// queued packet, as a Msg, to a Handler on the queue's own goroutine and
// answers the kernel with the Handler's Verdict. How packets are received and
// verdicts sent (one syscall per packet, or batched) is this package's
// business; the Handler contract is the same for every implementation.
package nfq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/fwd-project/fwd/internal/types/verdict"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Netfilter hook numbers, as carried in Msg.Hook.
const (
	HookPreRouting  uint8 = 0
	HookLocalIn     uint8 = 1
	HookForward     uint8 = 2
	HookLocalOut    uint8 = 3
	HookPostRouting uint8 = 4
)

// Msg is one queued packet. It is only valid during the Handler call: the
// Handler must not keep Msg or Payload.
type Msg struct {
	ID   uint32 // the kernel's packet id
	Hook uint8  // the netfilter hook that queued it (HookLocalIn, HookLocalOut...)
	Mark uint32 // the packet's mark when it was queued
	// InDev and OutDev are the interface indexes the packet came in on
	// and leaves by (NFQA_IFINDEX_INDEV, NFQA_IFINDEX_OUTDEV); 0 when the
	// kernel did not say (no input interface on OUTPUT, none yet known
	// for the output on PREROUTING).
	InDev, OutDev uint32
	// Payload is the packet from its IP header on, cut at the copy range.
	Payload []byte
}

// Handler decides one packet. A Queue calls it on one goroutine at a time.
// An Accept sets Config.AcceptMark in the packet's mark, so that the
// kernel rules can remember the flow in its connmark.
type Handler func(m *Msg) verdict.Verdict

// Queue is one kernel queue as the engine sees it.
type Queue interface {
	// Start binds the queue and answers its packets with h, on a
	// goroutine of the Queue's own, until Close. It returns once the
	// queue is bound: packets queued after that reach h.
	Start(h Handler) error
	// Close stops answering, unbinds the queue (the kernel then drops
	// or, failing open, accepts the packets queued to it) and waits for
	// the loop to end.
	Close() error
	// Stats returns the queue's own counters.
	Stats() Stats
}

// Turner is a Queue whose serving loop can prove it is not stuck: Turns
// grows, at least every 50 ms, while the loop still goes round (it waits
// in the kernel with a timeout); a loop wedged in a handler or a syscall
// stops it. fwd's systemd watchdog pings only while every queue's Turns
// moves. Batch is a Turner; Simple, whose loop is go-nfqueue's, is not.
type Turner interface {
	Turns() uint64
}

// Stats are a queue's I/O counters (the Handler counts verdicts).
type Stats struct {
	Received      uint64 // packets handed to the Handler
	RecvErrors    uint64 // errors reading from the queue socket (ENOBUFS included)
	VerdictErrors uint64 // verdicts the kernel did not take
	Malformed     uint64 // queue messages without id or payload, dropped
}

// Config configures one queue.
type Config struct {
	// Num is the queue number (iptables --queue-num / --queue-balance).
	Num uint16
	// CopyRange is how many bytes of each packet are copied to user space
	// (the kernel caps it at MaxCopyRange). Zero means DefaultCopyRange.
	CopyRange uint32
	// MaxQueueLen is the kernel queue's length in packets. Zero means
	// DefaultMaxQueueLen.
	MaxQueueLen uint32
	// ReadBuffer is the netlink socket's receive buffer in bytes. Zero
	// means DefaultReadBuffer.
	ReadBuffer int
	// FailOpen asks the kernel to accept packets, instead of dropping
	// them, when the queue is full (NFQA_CFG_F_FAIL_OPEN).
	FailOpen bool
	// AcceptMark is OR'ed into the mark of every accepted packet.
	AcceptMark uint32
	// BatchSize is how many queued packets Batch reads per receive call
	// and answers per send. Zero means DefaultBatchSize.
	BatchSize int
	// Loop, when not nil, is the thread that serves this Batch queue
	// together with the other queues given the same Loop; nil gives the
	// queue a Loop of its own. Simple ignores it.
	Loop *Loop
	// NetNS, when not zero, is a file descriptor of the network namespace
	// to open the queue in (for tests); zero is the caller's namespace.
	NetNS int
	// Log receives the queue's (rate-limited) error reports.
	Log *slog.Logger
}

// MaxCopyRange is the kernel's largest copy range
// (NFQNL_MAX_COPY_RANGE, 0xffff less a netlink attribute header): a
// larger one is taken as this.
const MaxCopyRange = 0xffff - 4

// Defaults for Config's zero fields.
//
// DefaultCopyRange is the whole packet (issue 16, bug 5). The headers fwd
// reads usually fit in 128 bytes, but an IPv6 packet may put up to 64 KiB
// of extension headers (any number, each up to 2048 bytes) before its
// transport header, and a packet cut before its ports cannot be judged: it
// is dropped as undecodable, which loses an allowed flow. A copy range is
// per queue, so no smaller fixed size, nor one per family, is safe, and a
// queued packet cannot be read again. The cost is small because only the
// first packets of new flows are queued and the kernel copies
// min(length, range) bytes: a SYN still copies 60-80 bytes; a large first
// UDP datagram copies all of it rather than 128 bytes (and takes that much
// more of the socket buffer). Batch's receive slots grow to hold a whole
// packet: 8.3 MiB of address space per queue for 128 slots, of which only
// the pages that packets reach become memory. A smaller --copy-range
// trades that for fail-closed drops of such packets.
const (
	DefaultCopyRange   = MaxCopyRange
	DefaultMaxQueueLen = 4096
	DefaultReadBuffer  = 8 << 20
)

func (c Config) withDefaults() Config {
	if c.CopyRange == 0 {
		c.CopyRange = DefaultCopyRange
	}
	if c.MaxQueueLen == 0 {
		c.MaxQueueLen = DefaultMaxQueueLen
	}
	if c.ReadBuffer == 0 {
		c.ReadBuffer = DefaultReadBuffer
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Simple is a Queue on go-nfqueue's own loop: one receive and one verdict
// syscall per packet.
type Simple struct {
	cfg   Config
	nf    *nfqueue.Nfqueue
	stats struct {
		received, recvErrors, verdictErrors, malformed atomic.Uint64
	}
	errLog limiter
	cancel context.CancelFunc
}

var _ Queue = (*Simple)(nil)

// OpenSimple opens a netlink socket for queue cfg.Num. The queue is bound,
// and starts receiving packets, in Start.
func OpenSimple(cfg Config) (*Simple, error) {
	cfg = cfg.withDefaults()
	flags := uint32(nfqueue.NfQaCfgFlagGSO)
	if cfg.FailOpen {
		flags |= nfqueue.NfQaCfgFlagFailOpen
	}
	nf, err := nfqueue.Open(&nfqueue.Config{
		NetNS:        cfg.NetNS,
		NfQueue:      cfg.Num,
		MaxQueueLen:  cfg.MaxQueueLen,
		MaxPacketLen: cfg.CopyRange,
		Copymode:     nfqueue.NfQnlCopyPacket,
		Flags:        flags,
		AfFamily:     unix.AF_INET,
		WriteTimeout: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open queue %d: %w", cfg.Num, err)
	}
	// Never let a full socket buffer stop the loop: the kernel drops (or,
	// failing open, accepts) what does not fit and we keep going.
	if err := nf.SetOption(netlink.NoENOBUFS, true); err != nil {
		nf.Close()
		return nil, fmt.Errorf("queue %d: set NoENOBUFS: %w", cfg.Num, err)
	}
	if err := setReadBuffer(nf.Con, cfg.ReadBuffer); err != nil {
		nf.Close()
		return nil, fmt.Errorf("queue %d: %w", cfg.Num, err)
	}
	return &Simple{cfg: cfg, nf: nf, errLog: limiter{every: time.Second}}, nil
}

// setReadBuffer sets the socket's receive buffer, past net.core.rmem_max
// when the process may (SO_RCVBUFFORCE needs CAP_NET_ADMIN).
func setReadBuffer(c *netlink.Conn, n int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("read buffer: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return fmt.Errorf("read buffer: %w", err)
	}
	if serr == nil {
		return nil
	}
	if err := c.SetReadBuffer(n); err != nil {
		return fmt.Errorf("read buffer: %w", err)
	}
	return nil
}

// Start implements Queue.
func (q *Simple) Start(h Handler) error {
	ctx, cancel := context.WithCancel(context.Background())
	q.cancel = cancel
	var m Msg
	hook := func(a nfqueue.Attribute) int {
		if a.PacketID == nil {
			q.stats.malformed.Add(1)
			return 0
		}
		m = Msg{ID: *a.PacketID}
		if a.Hook != nil {
			m.Hook = *a.Hook
		}
		if a.Mark != nil {
			m.Mark = *a.Mark
		}
		if a.InDev != nil {
			m.InDev = *a.InDev
		}
		if a.OutDev != nil {
			m.OutDev = *a.OutDev
		}
		if a.Payload != nil {
			m.Payload = *a.Payload
		}
		q.stats.received.Add(1)
		var err error
		if h(&m) == verdict.Accept {
			err = q.nf.SetVerdictWithOption(m.ID, nfqueue.NfAccept, nfqueue.WithMark(m.Mark|q.cfg.AcceptMark))
		} else {
			err = q.nf.SetVerdict(m.ID, nfqueue.NfDrop)
		}
		if err != nil {
			q.stats.verdictErrors.Add(1)
			if ctx.Err() == nil && q.errLog.allow(time.Now()) {
				q.cfg.Log.Warn("queue verdict failed", "queue", q.cfg.Num, "err", err)
			}
		}
		return 0
	}
	onErr := func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		q.stats.recvErrors.Add(1)
		if isClosed(err) {
			q.cfg.Log.Error("queue socket closed", "queue", q.cfg.Num, "err", err)
			return 1
		}
		if q.errLog.allow(time.Now()) {
			q.cfg.Log.Warn("queue receive error", "queue", q.cfg.Num, "err", err)
		}
		return 0 // ENOBUFS and friends: keep going
	}
	if err := q.nf.RegisterWithErrorFunc(ctx, hook, onErr); err != nil {
		cancel()
		return fmt.Errorf("bind queue %d: %w", q.cfg.Num, err)
	}
	return nil
}

// Close implements Queue.
func (q *Simple) Close() error {
	if q.cancel != nil {
		q.cancel()
	}
	if err := q.nf.Close(); err != nil && !isClosed(err) {
		return fmt.Errorf("close queue %d: %w", q.cfg.Num, err)
	}
	return nil
}

// Stats implements Queue.
func (q *Simple) Stats() Stats {
	return Stats{
		Received:      q.stats.received.Load(),
		RecvErrors:    q.stats.recvErrors.Load(),
		VerdictErrors: q.stats.verdictErrors.Load(),
		Malformed:     q.stats.malformed.Load(),
	}
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) || errors.Is(err, unix.EBADF)
}

// limiter lets one event through per interval. It is used from one
// goroutine at a time (a queue's loop); the atomic makes a stray concurrent
// call harmless.
type limiter struct {
	every time.Duration
	next  atomic.Int64 // unix nanoseconds
}

func (l *limiter) allow(now time.Time) bool {
	n := now.UnixNano()
	next := l.next.Load()
	if n < next {
		return false
	}
	return l.next.CompareAndSwap(next, n+int64(l.every))
}
