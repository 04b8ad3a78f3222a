package nfq

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/fwd-project/fwd/internal/types/verdict"
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
		cfg.Loop = NewLoop()
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
	if e := q.write(); e != 0 {
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

// batcher turns received datagrams into Handler calls and a verdict
// buffer. It is the part of Batch without a socket, for tests.
type batcher struct {
	queue      uint16
	acceptMark uint32
	handler    Handler
	msg        Msg
	out        []byte     // verdicts of the current batch
	pending    int        // verdicts in out
	ack        chan error // receives the answer to the bind request

	received, recvErrors, verdictErrors, malformed atomic.Uint64
}

func (b *batcher) stats() Stats {
	return Stats{
		Received:      b.received.Load(),
		RecvErrors:    b.recvErrors.Load(),
		VerdictErrors: b.verdictErrors.Load(),
		Malformed:     b.malformed.Load(),
	}
}

// datagram handles every netlink message of one received datagram. A
// message cut short (by the datagram's end, or a bad length) ends the
// datagram; a queued packet whose id was read is still answered (Drop,
// counted as malformed) so no packet is left waiting in the kernel.
func (b *batcher) datagram(buf []byte) {
	for len(buf) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(buf))
		typ := binary.NativeEndian.Uint16(buf[4:])
		seq := binary.NativeEndian.Uint32(buf[8:])
		cut := false
		if l < nlmsgHdrLen {
			b.malformed.Add(1)
			return
		}
		if l > len(buf) {
			cut, l = true, len(buf)
		}
		body := buf[nlmsgHdrLen:l]
		switch typ {
		case msgPacket:
			b.packet(body, cut)
		case unix.NLMSG_ERROR:
			b.nlError(body, seq)
		case unix.NLMSG_DONE:
			return
		case unix.NLMSG_OVERRUN:
			b.recvErrors.Add(1)
		case unix.NLMSG_NOOP:
		default:
			b.malformed.Add(1)
		}
		if cut {
			return
		}
		l = (l + 3) &^ 3
		if l >= len(buf) {
			return
		}
		buf = buf[l:]
	}
	if len(buf) > 0 {
		b.malformed.Add(1)
	}
}

// packet parses one NFQNL_MSG_PACKET body (nfgenmsg and attributes),
// asks the handler and appends the verdict.
func (b *batcher) packet(body []byte, cut bool) {
	m := &b.msg
	*m = Msg{}
	var haveID, havePayload bool
	if len(body) < nfgenLen {
		b.malformed.Add(1)
		return
	}
	attrs := body[nfgenLen:]
	for len(attrs) >= 4 {
		al := int(binary.NativeEndian.Uint16(attrs))
		at := binary.NativeEndian.Uint16(attrs[2:]) & nlaTypeMask
		if al < 4 || al > len(attrs) {
			cut = true
			break
		}
		data := attrs[4:al]
		switch at {
		case attrPacketHdr:
			// struct nfqnl_msg_packet_hdr { be32 id; be16 hw_protocol; u8 hook; }
			if len(data) >= 7 {
				m.ID = binary.BigEndian.Uint32(data)
				m.Hook = data[6]
				haveID = true
			}
		case attrMark:
			if len(data) >= 4 {
				m.Mark = binary.BigEndian.Uint32(data)
			}
		case attrInDev:
			if len(data) >= 4 {
				m.InDev = binary.BigEndian.Uint32(data)
			}
		case attrOutDev:
			if len(data) >= 4 {
				m.OutDev = binary.BigEndian.Uint32(data)
			}
		case attrPayload:
			m.Payload = data
			havePayload = true
		}
		al = (al + 3) &^ 3
		if al >= len(attrs) {
			attrs = nil
			break
		}
		attrs = attrs[al:]
	}
	if len(attrs) > 0 {
		cut = true // trailing bytes that are no attribute
	}
	if !haveID {
		b.malformed.Add(1)
		return
	}
	b.received.Add(1)
	if cut && !havePayload {
		// The packet's headers never arrived: drop it, unjudged.
		b.malformed.Add(1)
		b.verdict(m.ID, verdict.Drop, 0)
		return
	}
	v := b.handler(m)
	b.verdict(m.ID, v, m.Mark|b.acceptMark)
}

// verdict appends one NFQNL_MSG_VERDICT for id: an accept carries mark.
func (b *batcher) verdict(id uint32, v verdict.Verdict, mark uint32) {
	o := b.out
	l := verdictLen
	if v == verdict.Accept {
		l += 8
	}
	o = appendNlHdr(o, uint32(l), msgVerdict, unix.NLM_F_REQUEST, 0)
	o = appendNfgen(o, b.queue)
	// NFQA_VERDICT_HDR: struct nfqnl_msg_verdict_hdr { be32 verdict; be32 id; }
	o = binary.NativeEndian.AppendUint16(o, 12)
	o = binary.NativeEndian.AppendUint16(o, attrVerdict)
	if v == verdict.Accept {
		o = binary.BigEndian.AppendUint32(o, nfAccept)
	} else {
		o = binary.BigEndian.AppendUint32(o, nfDrop)
	}
	o = binary.BigEndian.AppendUint32(o, id)
	if v == verdict.Accept {
		o = binary.NativeEndian.AppendUint16(o, 8)
		o = binary.NativeEndian.AppendUint16(o, attrMark)
		o = binary.BigEndian.AppendUint32(o, mark)
	}
	b.out = o
	b.pending++
}

// nlError handles an NLMSG_ERROR: the answer to the bind request, or a
// verdict the kernel refused.
func (b *batcher) nlError(body []byte, seq uint32) {
	if len(body) < 4 {
		b.malformed.Add(1)
		return
	}
	errno := -int32(binary.NativeEndian.Uint32(body))
	var err error
	if errno != 0 {
		err = syscall.Errno(errno)
	}
	if seq == configSeq {
		select {
		case b.ack <- err:
		default:
		}
		return
	}
	if err != nil {
		b.verdictErrors.Add(1)
	}
}

// Loop is one goroutine, on a thread of its own while it waits in the
// kernel, that serves one or more Batch queues (Config.Loop): it takes a
// batch from each queue that has packets, answers it, and sleeps in
// poll(2) only when none has. One queue alone is read with blocking
// receives instead. A queue that falls behind (a receive fills every
// slot) gets a goroutine of its own, reading with blocking receives, until
// its batches are small again.
//
// Serving several queues from one thread is fewer threads waking: on a
// 2-CPU machine, a thread per queue woke once per batch of about three
// packets and took the CPU that the kernel's own packet processing (the
// sender, in the benchmark) needed; new UDP flows/s fell from 82% of plain
// iptables with one queue to 52% with two (57-61% with goroutines on the
// runtime's poller). One Loop for both queues keeps the rate of one queue
// (76-81%). Under overload (a flood beyond what one thread answers) a
// busy queue gets a thread of its own, so that a denied flood does not
// fill the kernel queues, and crowd out allowed connections, sooner than
// with a thread per queue.
type Loop struct {
	mu      sync.Mutex
	queues  []*Batch // started and not yet let go; guarded by mu
	running bool     // guarded by mu
	changed atomic.Bool
	wake    int  // eventfd: a queue was added, or came back from its own goroutine
	hasWake bool // wake is open; guarded by mu
}

// Loop tuning.
const (
	// soloSmall and soloIdle: a queue on its own goroutine goes back to
	// the Loop after soloIdle batches in a row of fewer than 1/soloSmall
	// of its slots.
	soloSmall = 4
	soloIdle  = 8
)

// NewLoop returns a Loop. Its goroutine runs while it has queues.
func NewLoop() *Loop { return &Loop{} }

// add starts serving q (after its bind request was sent).
func (l *Loop) add(q *Batch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.hasWake {
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			return fmt.Errorf("eventfd: %w", err)
		}
		l.wake, l.hasWake = fd, true
	}
	l.queues = append(l.queues, q)
	l.changed.Store(true)
	if !l.running {
		l.running = true
		go l.run()
		return nil
	}
	// Wake the running loop from poll(2), to read the bind answer now.
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(l.wake, one[:])
	return nil
}

// update drops the queues being closed (and those that failed) from the
// loop's view, lets their Close go on, and returns the queues left. A
// queue on its own goroutine stays until it comes back.
func (l *Loop) update(view []*Batch) []*Batch {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.queues[:0]
	for _, q := range l.queues {
		if !q.solo.Load() && (q.closing.Load() || q.failed.Load()) {
			close(q.done)
			continue
		}
		kept = append(kept, q)
	}
	clear(l.queues[len(kept):])
	l.queues = kept
	if len(kept) == 0 {
		l.running = false
		unix.Close(l.wake)
		l.hasWake = false
	}
	return append(view[:0], kept...)
}

func (l *Loop) run() {
	var view []*Batch
	var fds []unix.PollFd
	var buf [8]byte
	l.changed.Store(true)
	for {
		dirty := l.changed.Swap(false)
		for _, q := range view {
			dirty = dirty || q.closing.Load()
		}
		if dirty {
			view = l.update(view)
			if len(view) == 0 {
				return
			}
			fds = fds[:0]
			for _, q := range view {
				fd := int32(q.fd)
				if q.solo.Load() {
					fd = -1 // poll(2) skips it
				}
				fds = append(fds, unix.PollFd{Fd: fd, Events: unix.POLLIN})
			}
			fds = append(fds, unix.PollFd{Fd: int32(l.wake), Events: unix.POLLIN})
		}
		if len(view) == 1 && !view[0].solo.Load() {
			view[0].turns.Add(1)
			if _, ok := view[0].serve(unix.MSG_WAITFORONE); !ok {
				view[0].failed.Store(true)
				l.changed.Store(true)
			}
			continue
		}
		// poll(2) says which queues have packets; a queue whose receive
		// filled every slot has more: it gets a goroutine of its own.
		for i, q := range view {
			if fds[i].Revents == 0 || fds[i].Fd < 0 {
				continue
			}
			fds[i].Revents = 0
			if _, ok := q.serve(unix.MSG_DONTWAIT); !ok {
				q.failed.Store(true)
				l.changed.Store(true)
				continue
			}
			if q.nRecv == len(q.hdrs) {
				q.solo.Store(true)
				fds[i].Fd = -1
				go q.soloLoop(l)
			}
		}
		for _, q := range view {
			if !q.solo.Load() {
				q.turns.Add(1)
			}
		}
		w := &fds[len(fds)-1]
		if w.Revents != 0 {
			unix.Read(l.wake, buf[:])
		}
		for i := range fds {
			fds[i].Revents = 0
		}
		unix.Poll(fds, int(closePoll/time.Millisecond)) // EINTR or a timeout leave Revents 0
	}
}

// Turns implements Turner: the loop that serves q (its Loop, or its own
// goroutine while it is busy) counts one turn per receive or poll(2),
// which returns at the latest after closePoll when no packet comes.
func (q *Batch) Turns() uint64 { return q.turns.Load() }

// soloLoop serves q with blocking receives while it keeps falling
// behind, then hands it back to l.
func (q *Batch) soloLoop(l *Loop) {
	small := 0
	for small < soloIdle && !q.closing.Load() {
		q.turns.Add(1)
		if _, ok := q.serve(unix.MSG_WAITFORONE); !ok {
			q.failed.Store(true)
			break
		}
		if q.nRecv < len(q.hdrs)/soloSmall {
			small++
		} else {
			small = 0
		}
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	l.mu.Lock() // the Loop, and its eventfd, outlive a solo queue
	q.solo.Store(false)
	l.changed.Store(true)
	unix.Write(l.wake, one[:])
	l.mu.Unlock()
}
