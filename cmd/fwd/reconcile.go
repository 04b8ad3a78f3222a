package main

import (
	"context"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultReconcileInterval is how often fwd compares the kernel's tables
// with its rules.
const DefaultReconcileInterval = 2 * time.Second

// reconciler puts fwd's kernel rules back when anyone else changes or
// removes them (an admin's iptables -F, another firewall tool, a second
// fwd before the namespace lock existed): every interval it checks the
// tables and, on a difference, logs what differs and installs again.
type reconciler struct {
	restored atomic.Uint64 // repairs done
	failed   atomic.Uint64 // checks or repairs that failed

	loop everyLoop
}

// startReconcile runs the reconcile loop until stopReconcile; interval 0
// runs none.
func (d *daemon) startReconcile(interval time.Duration) {
	if interval <= 0 {
		return
	}
	d.rec.loop.start(interval, d.reconcileOnce)
}

// stopReconcile stops the loop and waits for a check in progress.
func (d *daemon) stopReconcile() { d.rec.loop.stop() }

// reconcileOnce checks the kernel's tables and repairs them. It holds the
// kernel mutex, so it never runs beside a reload's Prepare or Settle.
func (d *daemon) reconcileOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d.kmu.Lock()
	defer d.kmu.Unlock()
	drift, err := d.inst.Check(ctx, d.kcfg)
	if err != nil {
		if ctx.Err() == nil {
			d.rec.failed.Add(1)
			d.log.Warn("kernel rules check failed", "err", err)
		}
		return
	}
	if len(drift) == 0 {
		return
	}
	d.log.Warn("kernel rules changed by someone else, restoring them", "changes", len(drift), "drift", strings.Join(drift, "; "))
	if err := d.inst.Reinstall(ctx, d.kcfg); err != nil {
		if ctx.Err() == nil {
			d.rec.failed.Add(1)
			d.log.Error("kernel rules not restored, trying again later", "err", err)
		}
		return
	}
	n := d.rec.restored.Add(1)
	d.log.Info("kernel rules restored", "times", n)
}
