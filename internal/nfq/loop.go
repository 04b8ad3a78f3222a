package nfq

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

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
	nap     time.Duration // see NewLoop; fixed for the Loop's life
	mu      sync.Mutex
	queues  []*Batch // started and not yet let go; guarded by mu
	running bool     // guarded by mu
	changed atomic.Bool
	wake    int  // eventfd: a queue was added, or came back from its own goroutine
	hasWake bool // wake is open; guarded by mu
}

// NewLoop returns a Loop. Its goroutine runs while it has queues. A nap
// above zero is the pause after a batch of packets (see Loop.pause);
// zero answers every batch and waits for the next at once.
func NewLoop(nap time.Duration) *Loop { return &Loop{nap: nap} }

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
			q := view[0]
			q.turns.Add(1)
			if _, ok := q.serve(unix.MSG_WAITFORONE); !ok {
				q.failed.Store(true)
				l.changed.Store(true)
			} else if l.nap > 0 && q.nRecv >= napMin && q.nRecv < len(q.hdrs) {
				l.pause()
			}
			continue
		}
		// poll(2) says which queues have packets; a queue whose receive
		// filled every slot has more: it gets a goroutine of its own.
		got := 0
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
			got += q.nRecv
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
		wait := int(closePoll / time.Millisecond)
		if got >= napMin && l.nap > 0 {
			// Packets came: let more gather, then look without waiting.
			l.pause()
			wait = 0
		}
		unix.Poll(fds, wait) // EINTR or a timeout leave Revents 0
	}
}

// pause is the nap after a batch of at least napMin packets and fewer
// than the receive slots (packets arrive faster than one at a time), so
// that the next receive takes the packets that arrived meanwhile in one
// go: while the loop naps it waits on a timer, not on a socket, so a
// queued packet wakes no thread, and the loop makes one receive, one
// verdict write and one poll per batch rather than per few packets. A
// packet that finds the loop waiting on its sockets is answered at once;
// one that arrives during a nap waits for it to end. A receive that fills
// every slot does not nap (that queue gets a goroutine of its own).
//
// The loop calls it only with a nap set (fwd --queue-nap), which is off
// by default: it halves fwd's CPU per queued packet, but the kernel keeps
// the packets waiting for a verdict in a hash table that grows and
// shrinks with their number (Linux 6.x, rht_deferred_worker), and batches
// that fill and empty it every nap make it resize each time, on a kernel
// worker and in the softirq that queues the packet: new UDP flows/s fell
// from 0.83 of plain iptables to 0.78 with a 50 µs nap (bench/RESULTS.md,
// "Session 4").
func (l *Loop) pause() {
	ts := unix.NsecToTimespec(l.nap.Nanoseconds())
	unix.Nanosleep(&ts, nil) // EINTR: a shorter nap
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

// Loop tuning.
const (
	// soloSmall and soloIdle: a queue on its own goroutine goes back to
	// the Loop after soloIdle batches in a row of fewer than 1/soloSmall
	// of its slots.
	soloSmall = 4
	soloIdle  = 8
	// napMin: with a nap (NewLoop), the loop naps after a batch of at
	// least napMin packets that did not fill its slots (pause). A lone
	// packet (a connection now and then) is no stream: the loop waits on
	// its sockets again at once, and costs no timer wake-up.
	napMin = 2
)
