package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/sdnotify"
)

// systemd is fwd's side of Type=notify (see packaging/fwd.service):
// READY=1 once the kernel rules, the queues and the control socket are
// live; RELOADING=1 and READY=1 around every change of the rules (the
// lifecycle service's Changing hook, whatever asked: SIGHUP, fwctl
// reload, an edit); STATUS= with the live rules' hash and size; and
// WATCHDOG=1 while every queue's serving loop still turns. Without
// NOTIFY_SOCKET it does nothing.
type systemd struct {
	n     *sdnotify.Notifier
	ready atomic.Bool // READY=1 was sent: later changes are reloads
	stop  chan struct{}
	done  chan struct{}
}

func (d *daemon) initSystemd() {
	n, err := sdnotify.New(os.Getenv)
	if err != nil {
		d.log.Warn("systemd notification off", "err", err)
	}
	d.sd = &systemd{n: n}
}

// rulesStatus is the STATUS= line: the live rules' hash and size.
func rulesStatus(t *filter.Table) string {
	if t == nil || t.File() == nil {
		return "no rules"
	}
	f := t.File()
	return fmt.Sprintf("rules sha256 %s: %d groups, %d rules", short(f.Hash), len(f.Groups), f.NumRules())
}

// changing is the lifecycle service's Changing hook.
func (d *daemon) changing() func(*filter.Table) {
	if !d.sd.ready.Load() { // the first load, before READY=1
		return func(*filter.Table) { d.wakeExpiry() }
	}
	d.sdSend(d.sd.n.Reloading())
	return func(live *filter.Table) {
		d.sdSend(d.sd.n.Ready(rulesStatus(live)))
		d.wakeExpiry()
	}
}

func (d *daemon) sdSend(err error) {
	if err != nil {
		d.log.Warn("systemd notification", "err", err)
	}
}

// notifyReady says fwd is up, and starts the watchdog when systemd asks
// for one (WatchdogSec=, which sets WATCHDOG_USEC).
func (d *daemon) notifyReady() {
	if d.sd.n == nil {
		return
	}
	d.sd.ready.Store(true)
	d.sdSend(d.sd.n.Ready(rulesStatus(d.eng.Table())))
	every, err := sdnotify.WatchdogInterval(os.Getenv, os.Getpid())
	if err != nil {
		d.log.Warn("systemd watchdog off", "err", err)
	}
	if every <= 0 {
		return
	}
	d.sd.stop, d.sd.done = make(chan struct{}), make(chan struct{})
	alive := d.queuesTurning()
	tick := time.NewTicker(every)
	go func() {
		defer close(d.sd.done)
		defer tick.Stop()
		d.sd.n.Watch(d.sd.stop, tick.C, alive, func(err error) {
			d.log.Error("systemd watchdog: not pinging", "err", err)
		})
	}()
	d.log.Info("systemd watchdog", "ping_every", every)
}

// notifyStopping says fwd is stopping and ends the watchdog first: the
// queues it watches are about to close.
func (d *daemon) notifyStopping() {
	if d.sd.n == nil {
		return
	}
	if d.sd.stop != nil {
		close(d.sd.stop)
		<-d.sd.done
	}
	d.sdSend(d.sd.n.Stopping())
}

// queuesTurning returns the watchdog's liveness check: every queue whose
// loop can say so (nfq.Turner) has turned since the last check. A queue
// loop wedged in a handler or a syscall fails it, and systemd restarts
// fwd after WatchdogSec= without a ping.
func (d *daemon) queuesTurning() func() error {
	last := make([]uint64, len(d.queues))
	for i, q := range d.queues {
		if t, ok := q.(nfq.Turner); ok {
			last[i] = t.Turns()
		}
	}
	return func() error {
		// The engine's queues, not d.queues: the queue watchdog
		// replaces a stalled one.
		for i, q := range d.eng.Queues() {
			t, ok := q.(nfq.Turner)
			if !ok {
				continue
			}
			n := t.Turns()
			if n == last[i] {
				return fmt.Errorf("the loop serving queue %d has not turned since the last check", d.o.queueNum+i)
			}
			last[i] = n
		}
		return nil
	}
}
