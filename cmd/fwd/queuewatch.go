package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/queuewatch"
)

// The queue watchdog: every --queue-watch-interval fwd compares each of
// its queues in the kernel (/proc/net/netfilter/nfnetlink_queue: packets
// waiting for a verdict) with the packets its reader took. A queue with
// packets waiting and none taken, queuewatch.DefaultChecks checks in a
// row, has a reader that stopped answering (stuck in a handler or a
// syscall): it is logged, let go of (unbound without waiting for the
// reader) and opened again with a new reader, and counted
// (queue_restarts, status's queues, fwd_queue_restarts_total). A queue
// that stalls again after queuewatch.DefaultMaxRestarts restarts within
// queuewatch.DefaultWindow, or that cannot be opened again, makes fwd
// exit with status 1 for the service manager to restart it. The kernel
// rules stay in place meanwhile: with no reader, the queue drops new
// connections (fail closed; accepts them with --fail-open), and
// established ones go on.

// DefaultQueueWatchInterval is how often the queues are checked.
const DefaultQueueWatchInterval = time.Second

type watchOptions struct {
	interval time.Duration
}

func (w *watchOptions) register(fs *flag.FlagSet) {
	fs.DurationVar(&w.interval, "queue-watch-interval", DefaultQueueWatchInterval,
		fmt.Sprintf("how often to check that every queue's reader still answers; a queue stalled %d checks in a row is restarted, and fwd exits (status 1) when one stalls again after %d restarts within %v; 0 never checks",
			queuewatch.DefaultChecks, queuewatch.DefaultMaxRestarts, queuewatch.DefaultWindow))
}

func (w *watchOptions) check() error {
	if w.interval < 0 {
		return fmt.Errorf("--queue-watch-interval %v: want 0 (never) or more", w.interval)
	}
	return nil
}

// queueWatch is the daemon's watchdog state.
type queueWatch struct {
	mu    sync.Mutex // guards w
	w     *queuewatch.Watcher
	stop  chan struct{}
	done  chan struct{}
	fatal chan error // the watchdog gave up: run exits 1
}

// startQueueWatch starts the watchdog (not with --queue-watch-interval 0).
func (d *daemon) startQueueWatch() {
	d.qw.fatal = make(chan error, 1)
	if d.o.watch.interval <= 0 {
		return
	}
	d.qw.mu.Lock()
	d.qw.w = queuewatch.New(d.o.queues, queuewatch.Config{})
	d.qw.mu.Unlock()
	d.qw.stop, d.qw.done = make(chan struct{}), make(chan struct{})
	tick := time.NewTicker(d.o.watch.interval)
	go func() {
		defer close(d.qw.done)
		defer tick.Stop()
		for {
			select {
			case <-d.qw.stop:
				return
			case <-tick.C:
				if err := d.checkQueues(); err != nil {
					d.qw.fatal <- err
					return
				}
			}
		}
	}()
}

func (d *daemon) stopQueueWatch() {
	if d.qw.stop != nil {
		close(d.qw.stop)
		<-d.qw.done
		d.qw.stop = nil
	}
}

// checkQueues takes one sample of every queue and restarts the stalled
// ones; an error means fwd must exit.
func (d *daemon) checkQueues() error {
	ks, err := nfq.ReadKernelStats()
	if err != nil {
		d.log.Warn("queue watchdog: cannot read the kernel's queue counters", "err", err)
		return nil
	}
	byNum := make(map[uint16]nfq.KernelStats, len(ks))
	for _, k := range ks {
		byNum[k.Num] = k
	}
	for i, qs := range d.eng.QueueStats() {
		num := uint16(d.o.queueNum + i)
		k := byNum[num]
		s := queuewatch.Sample{Waiting: k.Waiting, IDSeq: k.IDSequence, Received: qs.Received}
		d.qw.mu.Lock()
		a := d.qw.w.Observe(i, s)
		restarts := d.qw.w.Restarts(i)
		d.qw.mu.Unlock()
		switch a {
		case queuewatch.GiveUp:
			return fmt.Errorf("queue %d stopped answering again after %d restarts within %v", num, queuewatch.DefaultMaxRestarts, queuewatch.DefaultWindow)
		case queuewatch.Restart:
			d.log.Error("queue reader stopped answering, restarting the queue", "queue", num,
				"waiting", k.Waiting, "id_seq", k.IDSequence, "received", qs.Received, "restarts_before", restarts)
			err := d.eng.Replace(i, func() (nfq.Queue, error) { return d.openQueue(i, nfq.NewLoop(d.o.queueNap)) })
			d.qw.mu.Lock()
			d.qw.w.Restarted(i)
			d.qw.mu.Unlock()
			if err != nil {
				return fmt.Errorf("queue %d: %w", num, err)
			}
			d.log.Info("queue restarted", "queue", num)
		}
	}
	return nil
}

// queueHealth is status's per-queue health; nil without the watchdog.
func (d *daemon) queueHealth() []control.QueueHealth {
	d.qw.mu.Lock()
	defer d.qw.mu.Unlock()
	if d.qw.w == nil {
		return nil
	}
	out := make([]control.QueueHealth, d.o.queues)
	for i := range out {
		out[i] = control.QueueHealth{Queue: uint16(d.o.queueNum + i), Health: d.qw.w.Health(i), Restarts: d.qw.w.Restarts(i)}
	}
	return out
}

// queueRestarts returns each queue's restarts (metrics); nil without
// the watchdog.
func (d *daemon) queueRestarts() []uint64 {
	d.qw.mu.Lock()
	defer d.qw.mu.Unlock()
	if d.qw.w == nil {
		return nil
	}
	out := make([]uint64, d.o.queues)
	for i := range out {
		out[i] = d.qw.w.Restarts(i)
	}
	return out
}

// totalQueueRestarts is the queue_restarts counter.
func (d *daemon) totalQueueRestarts() uint64 {
	var n uint64
	for _, r := range d.queueRestarts() {
		n += r
	}
	return n
}

// giveUp ends fwd after the watchdog gave up: it stops what serves
// fwctl and the metrics, and leaves the kernel rules in place (the
// queues, without a reader once fwd is gone, drop new connections, or
// accept them with --fail-open) and the stuck queues as they are (their
// close would wait for the stuck reader).
func (d *daemon) giveUp(cause error) {
	d.log.Error("queue watchdog: giving up, exiting for the service manager to restart fwd; the kernel rules stay (new connections are dropped until fwd is back, or accepted with --fail-open)", "err", cause)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.notifyStopping()
	var errs []error
	if d.srv != nil {
		errs = append(errs, d.srv.Close(ctx))
	}
	errs = append(errs, d.stopMetrics(ctx))
	d.stopReconcile()
	d.stopExpiry()
	if err := errors.Join(errs...); err != nil {
		d.log.Error("stop", "err", err)
	}
	d.logStats()
}

// openQueue opens queue worker i's queue (number --queue-num + i),
// served by loop (Batch). The queue watchdog reopens a queue with a new
// loop, since the old one's thread is stuck.
func (d *daemon) openQueue(i int, loop *nfq.Loop) (nfq.Queue, error) {
	cfg := nfq.Config{
		Num:         uint16(d.o.queueNum + i),
		CopyRange:   uint32(d.o.copyRange),
		MaxQueueLen: uint32(d.o.queueLen),
		FailOpen:    d.o.failOpen,
		AcceptMark:  d.o.mark,
		Loop:        loop,
		Log:         d.log,
	}
	var q nfq.Queue
	var err error
	if d.o.queueIO == "simple" {
		q, err = nfq.OpenSimple(cfg)
	} else {
		q, err = nfq.OpenBatch(cfg)
	}
	if err != nil {
		return nil, err
	}
	return d.o.test.wrapQueue(q), nil
}
