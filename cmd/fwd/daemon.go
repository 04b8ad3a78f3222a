package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/flowlog"
	"github.com/fwd-project/fwd/internal/kernel"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/observe"
	"github.com/fwd-project/fwd/internal/rules"
)

type daemon struct {
	o      options
	path   string
	ropts  rules.Options
	log    *slog.Logger
	eng    *engine.Engine
	inst   *kernel.Installer
	kcfg   kernel.Config
	queues []nfq.Queue
	svc    *lifecycle.Service
	// shipped is true when fwd fell back to the rules shipped with it.
	shipped bool
	srv     *control.Server
	// flows is the flow log, nil without --flow-log; opened after the
	// first load, before the workers start.
	flows *flowlog.Logger
	// kmu serializes every use of inst and kcfg once fwd runs: a
	// reload's Prepare and Settle, the reconcile loop and the stop.
	kmu sync.Mutex
	rec reconciler
	// obs and metrics serve --metrics (nil without it).
	obs     *observe.Recorder
	metrics *observe.Server
	sd      *systemd
	// exp recompiles the rules when an ACL entry expires (nil until
	// started).
	exp   atomic.Pointer[expiry]
	links everyLoop // keeps the engine's interface map current
	qw    queueWatch
	// fleet is fleet mode (nil without --store).
	fleet *fleetRun
}

// load makes the engine, with no table, and the lifecycle service, and
// loads the rules through it: the path of every later reload and edit.
func (d *daemon) load() error {
	d.eng = engine.New(nil, d.engineConfig())
	d.setAudit()
	cfg := lifecycle.ServiceConfig{
		Path: d.path, Rules: d.ropts, Target: d.eng, Log: d.log,
		Prepare: d.prepareKernel, Settle: d.settleKernel,
		Observe:  d.observeReload(),
		Changing: d.changing,
		Revoke:   d.revoke,
		History:  d.history(),
		CutFlows: d.cutFlows,
		Safety:   d.safety(),
	}
	if d.fleet != nil {
		d.fleet.configure(&cfg)
		d.svc = lifecycle.NewService(cfg)
		d.fleet.svc = d.svc
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return d.fleet.installInitial(ctx)
	}
	if d.shipped {
		cfg.ReadOnly = fmt.Sprintf("fwd runs on the shipped default rules %s, which edits must not rewrite: copy it to %s (or start fwd with --rules FILE) and restart fwd", d.path, DefaultRulesPath)
	}
	d.svc = lifecycle.NewService(cfg)
	// A confirmed change pending when fwd stopped: rolled back now when
	// its deadline passed, its timer resumed otherwise.
	if err := d.svc.Resume(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.svc.Reload(ctx)
	return err
}

// start opens the queues and installs the kernel rules for the table
// load put live.
func (d *daemon) start() error {
	table := d.eng.Table()
	loop := nfq.NewLoop(d.o.queueNap) // one thread serves the queues, a busy queue gets its own (nfq.Loop)
	for i := range d.o.queues {
		q, err := d.openQueue(i, loop)
		if err != nil {
			for _, q := range d.queues {
				q.Close()
			}
			return err
		}
		d.queues = append(d.queues, q)
	}
	// Bind the queues before the kernel sends anything to them.
	if err := d.eng.Start(d.queues); err != nil {
		return err
	}
	d.inst = kernel.New(kernel.ExecRunner{}, d.log)
	d.kcfg = kernel.Config{
		QueueBase:  uint16(d.o.queueNum),
		QueueCount: uint16(d.o.queues),
		FailOpen:   d.o.failOpen,
		Egress:     engine.RestrictsEgress(table.File()),
		Mark:       d.o.mark,
		Containers: d.o.containers.on,
	}
	d.kcfg.ContainerEgress = d.kcfg.Egress && d.o.containers.egress
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.inst.Install(ctx, d.kcfg); err != nil {
		d.eng.Stop()
		return err
	}
	d.log.Info("fwd running",
		"rules", d.path, "hash", short(table.File().Hash),
		"queues", d.o.queues, "queue_num", d.o.queueNum, "queue_io", d.o.queueIO,
		"fail_open", d.o.failOpen, "egress_hooked", d.kcfg.Egress, "containers", d.kcfg.Containers, "container_egress", d.kcfg.ContainerEgress)
	return nil
}

// startFleet connects to the store in fleet mode.
func (d *daemon) startFleet() error {
	if d.fleet == nil {
		return nil
	}
	return d.fleet.start(d.o.test.allowShortTTL())
}

// serveControl serves the lifecycle service on the control socket. Every
// change of the live rules (SIGHUP, fwctl reload, runtime edits) goes
// through the one service, one at a time.
func (d *daemon) serveControl() error {
	// A kill -9 in the middle of an edit can leave a temporary file
	// beside the rules; nothing writes the rules file yet.
	if n, err := rules.RemoveStaleTemps(d.path); err != nil {
		d.log.Warn("rules file", "err", err)
	} else if n > 0 {
		d.log.Info("removed temporary files left by an interrupted edit", "rules", d.path, "count", n)
	}
	srv, err := control.Listen(control.ServerConfig{
		Socket: d.o.socket, SocketGroup: d.o.sockGroup, Service: d.svc, Log: d.log,
		Counters:   d.counters,
		RuleHits:   d.eng.RuleHits,
		Limits:     d.limits,
		Audit:      d.auditStatus,
		WouldDrops: d.wouldDrops,
		Queues:     d.queueHealth,
		Fleet:      d.fleetStatus,
		Containers: d.containerStatus,
	})
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	d.srv = srv
	go func() {
		if err := srv.Serve(); err != nil {
			d.log.Error("control socket stopped", "err", err)
		}
	}()
	d.log.Info("control socket", "path", srv.Addr())
	return nil
}

func (d *daemon) counters() map[string]uint64 {
	s := d.eng.Stats()
	c := map[string]uint64{
		"accepted":            s.Accepted,
		"dropped_no_match":    s.DroppedNoMatch,
		"dropped_acl":         s.DroppedACL, // denied by an ACL entry
		"dropped_limited":     s.DroppedLimited,
		"accepted_acl":        s.AcceptedACL, // of accepted: allowed by an ACL entry
		"dropped_undecodable": s.DroppedUndecodable,
		"dropped_no_table":    s.DroppedNoTable,
		"queued":              s.Queue.Received,
		"queue_recv_errors":   s.Queue.RecvErrors,
		"verdict_errors":      s.Queue.VerdictErrors,
		"queue_malformed":     s.Queue.Malformed,
		// Repairs of the kernel rules after someone else changed them.
		"kernel_rules_restored":       d.rec.restored.Load(),
		"kernel_rules_check_failures": d.rec.failed.Load(),
		// Queues the watchdog restarted because their reader had
		// stopped answering.
		"queue_restarts": d.totalQueueRestarts(),
		// For leak hunting (the soak test samples it): the daemon's
		// goroutines, the status request's own included.
		"goroutines": uint64(runtime.NumGoroutine()),
	}
	addFlowLogCounters(c, d.flows)
	if d.fleet != nil {
		d.fleet.counters(c)
	}
	addAuditCounters(c, d.eng)
	// The kernel's side of overload: packets that found the queue full
	// (dropped, or accepted failing open) or the socket buffer full.
	if ks, err := nfq.ReadKernelStats(); err == nil {
		k := nfq.SumKernelStats(ks, uint16(d.o.queueNum), uint16(d.o.queues))
		c["kernel_queue_dropped"] = k.QueueDropped
		c["kernel_user_dropped"] = k.UserDropped
		c["kernel_waiting"] = uint64(k.Waiting)
	}
	return c
}

// reload is SIGHUP: the service logs what it did, warnings and
// failures included.
func (d *daemon) reload() {
	if d.fleet != nil {
		d.log.Info("SIGHUP ignored: in fleet mode the rules follow the store")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _ = d.svc.Reload(ctx)
}

// prepareKernel runs before a new table goes live: it only ever adds the
// egress hook, so the host stays fit for the old table too.
func (d *daemon) prepareKernel(ctx context.Context, t *filter.Table) error {
	d.kmu.Lock()
	defer d.kmu.Unlock()
	if d.inst == nil { // the first load: start installs what the table needs
		return nil
	}
	if !engine.RestrictsEgress(t.File()) || d.kcfg.Egress {
		return nil
	}
	return d.installEgress(ctx, true)
}

// settleKernel runs after the swap and removes the egress hook when the
// live table no longer restricts egress.
func (d *daemon) settleKernel(ctx context.Context, t *filter.Table) error {
	d.kmu.Lock()
	defer d.kmu.Unlock()
	if d.inst == nil {
		return nil
	}
	if engine.RestrictsEgress(t.File()) || !d.kcfg.Egress {
		return nil
	}
	return d.installEgress(ctx, false)
}

// installEgress is called with kmu held.
func (d *daemon) installEgress(ctx context.Context, egress bool) error {
	cfg := d.kcfg
	cfg.Egress = egress
	cfg.ContainerEgress = egress && d.o.containers.egress
	if err := d.inst.Install(ctx, cfg); err != nil {
		return fmt.Errorf("kernel rules for egress=%v: %w", egress, err)
	}
	d.kcfg = cfg
	d.log.Info("kernel rules", "egress_hooked", egress)
	return nil
}

func (d *daemon) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.notifyStopping()
	if d.fleet != nil {
		d.fleet.stop() // no snapshot goes in force during the stop
	}
	var serr error
	if d.srv != nil {
		serr = d.srv.Close(ctx)
	}
	merr := d.stopMetrics(ctx)
	d.stopReconcile()
	d.stopExpiry()
	d.stopQueueWatch()
	// Rules first: nothing new is queued, then the queues go.
	d.kmu.Lock()
	kerr := d.inst.Remove(ctx)
	d.kmu.Unlock()
	qerr := d.eng.Stop()
	d.logStats()
	return errors.Join(serr, merr, kerr, qerr)
}

func (d *daemon) logStats() {
	s := d.eng.Stats()
	d.log.Info("counters",
		"accepted", s.Accepted,
		"dropped_no_match", s.DroppedNoMatch,
		"dropped_acl", s.DroppedACL,
		"dropped_undecodable", s.DroppedUndecodable,
		"dropped_no_table", s.DroppedNoTable,
		"drop_log_skipped", s.DropLogSkipped,
		"queued", s.Queue.Received,
		"recv_errors", s.Queue.RecvErrors,
		"verdict_errors", s.Queue.VerdictErrors,
		"kernel_rules_restored", d.rec.restored.Load())
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
