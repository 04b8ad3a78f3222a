package engine

import (
	"errors"
	"fmt"
	"slices"

	"github.com/fwd-project/fwd/internal/nfq"
)

// This file lets fwd's queue watchdog restart a queue whose reader is
// stuck: the queue is let go of and a new one serves its number, with a
// new Worker (the old one may still be inside Decide, which must not be
// called from two goroutines). The old worker's and queue's counts stay
// in Stats.

// Queues returns the queues the engine serves now, in worker order.
func (e *Engine) Queues() []nfq.Queue {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.queues)
}

// QueueStats returns the own counters of each queue the engine serves
// now, in worker order (a restarted queue's count starts again).
func (e *Engine) QueueStats() []nfq.Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]nfq.Stats, len(e.queues))
	for i, q := range e.queues {
		out[i] = q.Stats()
	}
	return out
}

// Replace lets go of queue i without waiting for its reader (through
// nfq.Abandoner; a queue that is not one is closed in the background),
// then starts q in its place with a new Worker. open is called between
// the two: it opens the new queue once the old one no longer holds the
// queue number. When open or the start fails, slot i keeps no queue
// (its packets are dropped, or accepted failing open, by the kernel)
// and the error says so.
func (e *Engine) Replace(i int, open func() (nfq.Queue, error)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if i < 0 || i >= len(e.queues) {
		return fmt.Errorf("replace queue worker %d: no such worker", i)
	}
	old, oldW := e.queues[i], e.workers[i]
	var aerr error
	if a, ok := old.(nfq.Abandoner); ok {
		aerr = a.Abandon()
	} else {
		go old.Close()
	}
	e.retired = append(e.retired, retiredQueue{q: old, w: oldW})
	q, err := open()
	if err != nil {
		e.queues[i], e.workers[i] = deadQueue{}, e.NewWorker(oldW.id)
		return errors.Join(aerr, fmt.Errorf("reopen queue worker %d: %w", i, err))
	}
	w := e.NewWorker(oldW.id)
	if err := q.Start(w.Decide); err != nil {
		e.queues[i], e.workers[i] = deadQueue{}, w
		return errors.Join(aerr, fmt.Errorf("restart queue worker %d: %w", i, err))
	}
	e.queues[i], e.workers[i] = q, w
	return aerr
}

// retiredQueue is a queue Replace let go of, and its worker: their
// counts stay in Stats.
type retiredQueue struct {
	q nfq.Queue
	w *Worker
}

// deadQueue holds the place of a queue that could not be reopened.
type deadQueue struct{}

func (deadQueue) Start(nfq.Handler) error { return errors.New("no queue") }
func (deadQueue) Close() error            { return nil }
func (deadQueue) Stats() nfq.Stats        { return nfq.Stats{} }
