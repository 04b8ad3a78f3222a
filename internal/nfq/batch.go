package nfq

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Batch is a Queue that reads up to Config.BatchSize queued packets with
// one recvmmsg(2) and answers all of them with one write(2): a buffer of
// concatenated NFQNL_MSG_VERDICT messages, one per packet, which the
// kernel's netlink_rcv_skb processes one after the other. One message per
// packet (rather than NFQNL_MSG_VERDICT_BATCH, which gives every id up to
// one id the same verdict) lets accepts carry the accept mark and drops
// not, in any order.
//
// The socket is opened by mdlayher/netlink (namespace, bind, options);
// Batch then takes a duplicate of its descriptor out of the runtime's
// poller and reads it with blocking syscalls (recvmmsg, poll) on the
// thread of its Loop: a queued packet wakes that thread directly, as it
// would a C program's. Through the poller, each wake-up went through the
// Go scheduler (epoll wakes an idle thread, which hands the goroutine to
// another), and on 2 CPUs those hand-offs and the scheduler's spinning
// threads took the CPU the sender needed (see Loop).
// netlink.Conn.Receive is not used either: it reads one datagram per call
// (the kernel queues each packet as a datagram of its own), peeks first
// and allocates per message. Parsing and answering allocate nothing.
type Batch struct {
	cfg  Config
	fd   int // blocking, with a receive timeout (closePoll)
	loop *Loop

	// Owned by the loop's goroutine (and by Start before it runs).
	b     batcher
	slot  int // bytes per receive slot
	slots []byte
	iovs  []unix.Iovec
	hdrs  []unix.Mmsghdr
	nRecv int
	errno syscall.Errno

	ack     chan error // the kernel's answer to the bind request
	done    chan struct{}
	started bool
	closing atomic.Bool
	solo    atomic.Bool // served by a goroutine of its own (Loop)
	failed  atomic.Bool // the socket failed: the Loop lets go of it
	turns   atomic.Uint64
	once    sync.Once
	errLog  limiter
}

var _ Queue = (*Batch)(nil)

// Batch defaults.
const (
	DefaultBatchSize = 128
	// maxSlotBytes bounds the receive buffers of one queue: 128 slots of
	// a whole packet (DefaultCopyRange) fit. Pages a packet never
	// reached are never touched, so they cost address space, not memory.
	maxSlotBytes = 9 << 20
	slotOverhead = 512 // netlink and nfqueue headers and attributes around the payload
	// closePoll bounds a blocking receive, so that the loop sees Close
	// within this time when no packet comes.
	closePoll = 50 * time.Millisecond
)

// Netlink and nfnetlink_queue constants (linux/netfilter/nfnetlink_queue.h).
const (
	nlmsgHdrLen   = 16
	nfgenLen      = 4
	subsysQueue   = 3                // NFNL_SUBSYS_QUEUE
	msgPacket     = subsysQueue << 8 // | NFQNL_MSG_PACKET (0)
	msgVerdict    = subsysQueue<<8 | 1
	msgConfig     = subsysQueue<<8 | 2
	attrPacketHdr = 1 // NFQA_PACKET_HDR
	attrVerdict   = 2 // NFQA_VERDICT_HDR
	attrMark      = 3 // NFQA_MARK
	attrInDev     = 5 // NFQA_IFINDEX_INDEV
	attrOutDev    = 6 // NFQA_IFINDEX_OUTDEV
	attrPayload   = 10
	cfgCmd        = 1 // NFQA_CFG_CMD
	cfgParams     = 2
	cfgMaxLen     = 3
	cfgMask       = 4
	cfgFlags      = 5
	cmdBind       = 1 // NFQNL_CFG_CMD_BIND
	copyPacket    = 2 // NFQNL_COPY_PACKET
	flagFailOpen  = 1 // NFQA_CFG_F_FAIL_OPEN
	flagGSO       = 4 // NFQA_CFG_F_GSO
	nfDrop        = 0
	nfAccept      = 1
	nlaTypeMask   = 0x3fff
	verdictLen    = nlmsgHdrLen + nfgenLen + 4 + 8 // + 4 + 4 with a mark
	configSeq     = 0x66776401                     // the bind request's sequence number
)

// OpenBatch opens a netlink socket for queue cfg.Num. The queue is bound,
// and starts receiving packets, in Start.
func OpenBatch(cfg Config) (*Batch, error) {
	cfg = cfg.withDefaults()
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: cfg.NetNS})
	if err != nil {
		return nil, fmt.Errorf("open queue %d: %w", cfg.Num, err)
	}
	// Never let a full socket buffer fail a receive: the kernel drops
	// (or, failing open, accepts) what does not fit and we keep going.
	if err := conn.SetOption(netlink.NoENOBUFS, true); err != nil {
		conn.Close()
		return nil, fmt.Errorf("queue %d: set NoENOBUFS: %w", cfg.Num, err)
	}
	if err := setReadBuffer(conn, cfg.ReadBuffer); err != nil {
		conn.Close()
		return nil, fmt.Errorf("queue %d: %w", cfg.Num, err)
	}
	fd, err := detach(conn)
	if err != nil {
		return nil, fmt.Errorf("queue %d: %w", cfg.Num, err)
	}
	if cfg.Loop == nil {
		cfg.Loop = NewLoop(0)
	}
	q := &Batch{
		cfg: cfg, fd: fd, loop: cfg.Loop,
		ack:    make(chan error, 1),
		done:   make(chan struct{}),
		errLog: limiter{every: time.Second},
	}
	q.initBuffers()
	return q, nil
}

// detach returns a blocking duplicate of conn's socket, with a receive
// timeout of closePoll, and closes conn: closing takes the original
// descriptor out of the runtime's poller, the duplicate keeps the socket.
func detach(conn *netlink.Conn) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return -1, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		derr = err
	}
	if cerr := conn.Close(); derr == nil && cerr != nil {
		derr = cerr
	}
	if derr == nil {
		derr = unix.SetNonblock(fd, false)
	}
	if derr == nil {
		tv := unix.NsecToTimeval(closePoll.Nanoseconds())
		derr = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	if derr != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("detach socket: %w", derr)
	}
	return fd, nil
}

// initBuffers sizes the receive slots (one datagram each) and the verdict
// buffer for cfg.BatchSize packets.
func (q *Batch) initBuffers() {
	slot := (int(q.cfg.CopyRange) + slotOverhead + 7) &^ 7
	n := q.cfg.BatchSize
	if n*slot > maxSlotBytes {
		n = max(maxSlotBytes/slot, 4)
	}
	q.slot = slot
	q.slots = make([]byte, n*slot)
	q.iovs = make([]unix.Iovec, n)
	q.hdrs = make([]unix.Mmsghdr, n)
	for i := range n {
		q.iovs[i].Base = &q.slots[i*slot]
		q.iovs[i].SetLen(slot)
		q.hdrs[i].Hdr.Iov = &q.iovs[i]
		q.hdrs[i].Hdr.SetIovlen(1)
	}
	q.b = batcher{
		queue:      q.cfg.Num,
		acceptMark: q.cfg.AcceptMark,
		out:        make([]byte, 0, n*(verdictLen+8)+verdictLen),
		ack:        q.ack,
	}
}

// bindRequest is the one config message that binds the queue and sets
// copy mode and range, queue length and flags; the kernel applies the
// attributes after the bind command, in one go.
func bindRequest(cfg Config) []byte {
	flags := uint32(flagGSO)
	if cfg.FailOpen {
		flags |= flagFailOpen
	}
	b := make([]byte, 0, 64)
	b = appendNlHdr(b, 0, msgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK, configSeq)
	b = appendNfgen(b, cfg.Num)
	// struct nfqnl_msg_config_cmd { u8 command; u8 pad; be16 pf; }
	b = appendAttr(b, cfgCmd, []byte{cmdBind, 0, 0, unix.AF_INET})
	params := binary.BigEndian.AppendUint32(nil, cfg.CopyRange)
	b = appendAttr(b, cfgParams, append(params, copyPacket))
	b = appendAttr(b, cfgMaxLen, binary.BigEndian.AppendUint32(nil, cfg.MaxQueueLen))
	all := uint32(flagFailOpen | flagGSO)
	b = appendAttr(b, cfgMask, binary.BigEndian.AppendUint32(nil, all))
	b = appendAttr(b, cfgFlags, binary.BigEndian.AppendUint32(nil, flags))
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	return b
}

func appendNlHdr(b []byte, length uint32, typ, flags uint16, seq uint32) []byte {
	b = binary.NativeEndian.AppendUint32(b, length)
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	return binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel's
}

func appendNfgen(b []byte, queue uint16) []byte {
	b = append(b, unix.AF_UNSPEC, 0 /* NFNETLINK_V0 */)
	return binary.BigEndian.AppendUint16(b, queue)
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// Start implements Queue: it sends the bind request, starts the loop and
// waits for the kernel's acknowledgement (which the loop receives, along
// with any packet queued meanwhile).
func (q *Batch) Start(h Handler) error {
	req := bindRequest(q.cfg)
	if _, err := unix.Write(q.fd, req); err != nil {
		q.Close()
		return fmt.Errorf("bind queue %d: %w", q.cfg.Num, err)
	}
	q.b.handler = h
	if err := q.loop.add(q); err != nil {
		q.Close()
		return fmt.Errorf("bind queue %d: %w", q.cfg.Num, err)
	}
	q.started = true
	select {
	case err := <-q.ack:
		if err != nil {
			q.Close()
			return fmt.Errorf("bind queue %d: %w", q.cfg.Num, err)
		}
		return nil
	case <-time.After(5 * time.Second):
		q.Close()
		return fmt.Errorf("bind queue %d: no answer from the kernel", q.cfg.Num)
	}
}

// serve receives one batch with recvmmsg flags and answers it; it
// reports whether anything was received, and false on a fatal error.
func (q *Batch) serve(flags int) (got, ok bool) {
	q.recvmmsg(flags)
	if q.errno != 0 {
		if q.errno == unix.EBADF {
			q.fail("queue receive failed", q.errno)
			return false, false
		}
		q.b.recvErrors.Add(1)
		q.warn("queue receive error", q.errno)
		return false, true
	}
	q.b.out = q.b.out[:0]
	q.b.pending = 0
	for i := range q.nRecv {
		h := &q.hdrs[i]
		n := min(int(h.Len), q.slot)
		q.b.datagram(q.slots[i*q.slot : i*q.slot+n])
	}
	if len(q.b.out) == 0 {
		return q.nRecv > 0, true
	}
	q.b.coalesce()
	if e := q.write(); e != 0 {
		q.b.tainted = true
		q.b.verdictErrors.Add(uint64(q.b.pending))
		if e == unix.EBADF {
			q.fail("queue verdict failed", e)
			return true, false
		}
		q.warn("queue verdict failed", e)
	}
	return true, true
}

// recvmmsg receives up to len(q.hdrs) datagrams. With MSG_WAITFORONE it
// blocks until the first, or until the receive timeout (then nRecv is 0),
// and takes what else is there without waiting; with MSG_DONTWAIT it
// does not wait at all.
func (q *Batch) recvmmsg(flags int) {
	for i := range q.hdrs {
		q.hdrs[i].Hdr.Flags = 0
		q.hdrs[i].Len = 0
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(q.fd), uintptr(unsafe.Pointer(&q.hdrs[0])), uintptr(len(q.hdrs)), uintptr(flags), 0, 0)
	for e == unix.EINTR {
		n, _, e = unix.Syscall6(unix.SYS_RECVMMSG, uintptr(q.fd), uintptr(unsafe.Pointer(&q.hdrs[0])), uintptr(len(q.hdrs)), uintptr(flags), 0, 0)
	}
	if e == unix.EAGAIN {
		n, e = 0, 0 // nothing queued (within the receive timeout)
	}
	if e != 0 {
		n = 0
	}
	q.errno, q.nRecv = e, int(n)
}

// write sends the verdict buffer in one write(2): one skb, processed
// message by message by the kernel.
func (q *Batch) write() syscall.Errno {
	_, _, e := unix.Syscall(unix.SYS_WRITE, uintptr(q.fd), uintptr(unsafe.Pointer(&q.b.out[0])), uintptr(len(q.b.out)))
	for e == unix.EINTR {
		_, _, e = unix.Syscall(unix.SYS_WRITE, uintptr(q.fd), uintptr(unsafe.Pointer(&q.b.out[0])), uintptr(len(q.b.out)))
	}
	return e
}

func (q *Batch) fail(msg string, err error) {
	if q.closing.Load() || isClosed(err) {
		return
	}
	q.cfg.Log.Error(msg, "queue", q.cfg.Num, "err", err)
}

func (q *Batch) warn(msg string, err error) {
	if q.errLog.allow(time.Now()) {
		q.cfg.Log.Warn(msg, "queue", q.cfg.Num, "err", err)
	}
}

// Close implements Queue: closing the socket unbinds the queue. It waits
// for the loop, which sees Close within closePoll, so that the descriptor
// is not closed under a receive.
func (q *Batch) Close() error {
	var err error
	q.once.Do(func() {
		q.closing.Store(true)
		if q.started {
			<-q.done // the loop lets go of the queue within closePoll
		}
		if cerr := unix.Close(q.fd); cerr != nil {
			err = fmt.Errorf("close queue %d: %w", q.cfg.Num, cerr)
		}
	})
	return err
}

// Stats implements Queue.
func (q *Batch) Stats() Stats { return q.b.stats() }
