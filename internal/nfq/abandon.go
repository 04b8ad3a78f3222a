package nfq

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Abandoner is a Queue that can be let go of while its reader is stuck
// (in a Handler, or a syscall), so that the queue number can be bound
// again by a new Queue: fwd's queue watchdog restarts a stalled queue
// this way.
type Abandoner interface {
	// Abandon unbinds the queue at once, without waiting for its
	// reader; the kernel drops (or, failing open, accepts) the packets
	// that were waiting for it. The socket is closed in the background
	// once the reader lets go of it, which a reader stuck for good
	// never does: its socket then stays open, bound to no queue.
	Abandon() error
}

const cmdUnbind = 2 // NFQNL_CFG_CMD_UNBIND

// unbindRequest unbinds cfg.Num from the socket that sends it.
func unbindRequest(cfg Config) []byte {
	b := make([]byte, 0, 32)
	b = appendNlHdr(b, 0, msgConfig, unix.NLM_F_REQUEST, configSeq+1)
	b = appendNfgen(b, cfg.Num)
	b = appendAttr(b, cfgCmd, []byte{cmdUnbind, 0, 0, unix.AF_INET})
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	return b
}

// Abandon implements Abandoner. A write to the socket while the reader
// is inside a Handler is safe: each write(2) is one message of its own.
func (q *Batch) Abandon() error {
	_, err := unix.Write(q.fd, unbindRequest(q.cfg))
	q.closing.Store(true)
	go q.Close() // waits for the loop to let go of the socket, then closes it
	if err != nil {
		return fmt.Errorf("unbind queue %d: %w", q.cfg.Num, err)
	}
	return nil
}

// Abandon implements Abandoner: closing go-nfqueue's socket unbinds
// the queue; the close does not wait for a stuck handler.
func (q *Simple) Abandon() error {
	if q.cancel != nil {
		q.cancel()
	}
	if err := q.nf.Close(); err != nil && !isClosed(err) {
		return fmt.Errorf("close queue %d: %w", q.cfg.Num, err)
	}
	return nil
}
