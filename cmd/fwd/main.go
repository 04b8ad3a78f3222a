// Command fwd is the firewall daemon: it loads a rules file, installs its
// netfilter rules (new connections go to NFQUEUE), answers every queued
// packet from the compiled table, reloads on SIGHUP (all or nothing) and
// removes everything it installed on SIGTERM or SIGINT.
//
// Usage:
//
//	fwd [--rules FILE] [--queues N] [--queue-num BASE] [--queue-io batch|simple] [--queue-maxlen N]
//	    [--fail-open] [--log-level LEVEL] [--reconcile-interval D] [--queue-watch-interval D]
//	    [--max-rules N] [--max-file-bytes N]
//	    [--socket PATH] [--socket-group GROUP]
//	    [--flow-log FILE [--flow-log-max-size SIZE] [--flow-log-files N] [--flow-log-rate N]]
//	    [--metrics HOST:PORT [--metrics-public]]
//	    [--failsafe-ssh] [--refuse-lockout] [--ssh-port PORTS]
//	fwd --version
//
// One fwd owns a network namespace's firewall: a second one started in the
// same namespace refuses to start, naming the first one's pid, before it
// touches any rule or queue (see internal/netnslock). Every
// --reconcile-interval the owner compares the kernel's tables with its
// rules and installs them again when someone changed or removed them,
// saying so in its log and in the kernel_rules_restored counter.
//
// --flow-log writes one line per decided new flow, in the AWS VPC Flow
// Logs version 2 format, rotated by size and rate-limited (see
// internal/flowlog); the verdict path never waits for it.
//
// The control socket (default /run/fwd/fwd.sock) serves fwctl: status,
// reload and runtime edits, all through the same all-or-nothing path as
// SIGHUP.
//
// Every --queue-watch-interval a queue watchdog checks that each queue's
// reader still answers, restarts a stalled queue, and makes fwd exit 1
// (kernel rules left in place: fail closed) when one keeps stalling
// (see queuewatch.go).
//
// Exit codes: 0 clean stop, 1 runtime failure, 2 usage, 3 bad rules file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fwd-project/fwd/internal/buildinfo"
	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/flowlog"
	"github.com/fwd-project/fwd/internal/kernel"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/netnslock"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/observe"
	"github.com/fwd-project/fwd/internal/rules"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitBadRules = 3
)

// DefaultRulesPath is where fwd looks for its rules first.
const DefaultRulesPath = "/etc/fwd/rules.yaml"

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

type options struct {
	rules      string
	rulesGiven bool
	queues     int
	queueNum   int
	failOpen   bool
	logLevel   slog.Level
	mark       uint32
	copyRange  int
	queueIO    string
	queueLen   int
	socket     string
	sockGroup  string
	// reconcile is how often the kernel rules are checked; 0: never.
	reconcile time.Duration
	// ownerLock names the abstract socket that makes this fwd the one
	// owner of its network namespace.
	ownerLock string
	// maxRules and maxFileBytes bound the rules file fwd accepts.
	maxRules     int
	maxFileBytes int64
	flowLog      flowLogOptions
	// metrics is the metrics and status page listener ("": none).
	metrics       string
	metricsPublic bool
	// version: print the version and exit.
	version bool
	// limitEntries sizes the limit table (engine.Config.LimitEntries).
	limitEntries int
	// audit is --audit and the change history's bounds (audit.go).
	audit auditOptions
	// watch configures the queue watchdog (queuewatch.go).
	watch watchOptions
	// test holds the options of a test build (-tags fwdtest).
	test testOptions
	// safety: the lockout guard and the failsafe (safety.go).
	safety safetyOptions
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("fwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.rules, "rules", DefaultRulesPath, "rules `file`; when the default is missing, the rules/default.yaml shipped with fwd")
	fs.IntVar(&o.queues, "queues", runtime.NumCPU(), "number of NFQUEUE queues (one worker each), new flows are balanced over them")
	fs.IntVar(&o.queueNum, "queue-num", 0, "first NFQUEUE queue `number`")
	fs.BoolVar(&o.failOpen, "fail-open", false, "accept new connections while fwd is not answering (queue full, or fwd not running) instead of dropping them")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	mark := fs.String("mark", fmt.Sprintf("%#x", kernel.DefaultMark), "packet and connection mark `bits` that record an accepted flow")
	fs.IntVar(&o.copyRange, "copy-range", nfq.DefaultCopyRange, "bytes of each queued packet copied to fwd (default the whole packet; a packet cut before its transport header is dropped)")
	fs.StringVar(&o.queueIO, "queue-io", "batch", "queue I/O: batch (many packets per receive, all verdicts in one send) or simple (go-nfqueue, one packet per call)")
	fs.IntVar(&o.queueLen, "queue-maxlen", nfq.DefaultMaxQueueLen, "kernel queue length in packets; beyond it new flows are dropped (or accepted with --fail-open)")
	fs.StringVar(&o.socket, "socket", control.DefaultSocket, "control socket `path` for fwctl")
	fs.StringVar(&o.sockGroup, "socket-group", "", "`group` whose members may use the control socket besides root")
	fs.DurationVar(&o.reconcile, "reconcile-interval", DefaultReconcileInterval, "how often to check that fwd's kernel rules are in place and restore them when someone changed them; 0 never checks")
	o.ownerLock = netnslock.DefaultName
	fs.IntVar(&o.maxRules, "max-rules", rules.DefaultMaxRules, "largest number of rules the rules file may hold")
	fs.Int64Var(&o.maxFileBytes, "max-file-bytes", rules.DefaultMaxFileBytes, "largest rules file, in `bytes`, fwd reads")
	flowLogSize := o.flowLog.register(fs)
	o.audit.register(fs)
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics (/metrics) and a status page (/) on `HOST:PORT`, e.g. 127.0.0.1:9101; loopback only unless --metrics-public")
	fs.BoolVar(&o.metricsPublic, "metrics-public", false, "let --metrics listen on an address that is not loopback")
	fs.BoolVar(&o.version, "version", false, "print fwd's version and commit, and exit")
	fs.IntVar(&o.limitEntries, "limit-entries", engine.DefaultLimitEntries, "(rule, peer) pairs the rules with a limit track, at most (about 128 bytes each, allocated when a rule first has a limit); more peers evict the least recently seen")
	o.watch.register(fs)
	o.test.register(fs)
	o.safety.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fwd [flags]\n\nfwd gives this host security-group semantics through NFQUEUE.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	o.rulesGiven = given["rules"]
	if err := o.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return o, fmt.Errorf("--log-level: %w", err)
	}
	m, err := strconv.ParseUint(*mark, 0, 32)
	if err != nil || m == 0 {
		return o, fmt.Errorf("--mark %q: want a non-zero 32-bit number", *mark)
	}
	o.mark = uint32(m)
	if o.queues < 1 || o.queueNum < 0 || o.queueNum+o.queues-1 > 0xffff {
		return o, fmt.Errorf("--queue-num %d --queues %d: queues must lie within 0..65535", o.queueNum, o.queues)
	}
	if o.limitEntries < 1 || o.limitEntries > 1<<24 {
		return o, fmt.Errorf("--limit-entries %d: want 1..16777216", o.limitEntries)
	}
	if o.copyRange < 64 || o.copyRange > 0xffff {
		return o, fmt.Errorf("--copy-range %d: want 64..65535", o.copyRange)
	}
	if o.queueIO != "batch" && o.queueIO != "simple" {
		return o, fmt.Errorf("--queue-io %q: want batch or simple", o.queueIO)
	}
	if o.queueLen < 1 {
		return o, fmt.Errorf("--queue-maxlen %d: want at least 1", o.queueLen)
	}
	if o.reconcile < 0 {
		return o, fmt.Errorf("--reconcile-interval %v: want 0 (never) or more", o.reconcile)
	}
	if o.maxRules < 1 {
		return o, fmt.Errorf("--max-rules %d: want at least 1", o.maxRules)
	}
	if o.maxFileBytes < 1 {
		return o, fmt.Errorf("--max-file-bytes %d: want at least 1", o.maxFileBytes)
	}
	if err := o.watch.check(); err != nil {
		return o, err
	}
	if err := o.safety.check(); err != nil {
		return o, err
	}
	if err := o.flowLog.check(*flowLogSize, given); err != nil {
		return o, err
	}
	if err := o.audit.check(); err != nil {
		return o, err
	}
	if o.metrics != "" {
		if err := observe.CheckAddr(o.metrics, o.metricsPublic); err != nil {
			return o, fmt.Errorf("--metrics %w", err)
		}
	}
	return o, nil
}

// shippedRules lists where the rules shipped with fwd may be, relative to
// the binary: installed next to it, or in the source tree (bin/fwd).
func shippedRules() []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	dir := filepath.Dir(exe)
	return []string{
		filepath.Join(dir, "rules", "default.yaml"),
		filepath.Join(dir, "..", "rules", "default.yaml"),
		filepath.Join(dir, "..", "share", "fwd", "default.yaml"),
	}
}

// rulesPath picks the rules file: the one given, else the default path,
// else the shipped default.
func rulesPath(o options, log *slog.Logger) (string, error) {
	if o.rulesGiven {
		return o.rules, nil
	}
	if _, err := os.Stat(o.rules); err == nil {
		return o.rules, nil
	}
	for _, p := range shippedRules() {
		if _, err := os.Stat(p); err == nil {
			p = filepath.Clean(p)
			log.Warn("rules file missing, using the shipped default rules", "missing", o.rules, "using", p)
			return p, nil
		}
	}
	return "", fmt.Errorf("no rules file: %s does not exist, and no shipped default rules at %s: create it with install -D -m 0644 rules/default.yaml %s (in fwd's source tree)",
		o.rules, strings.Join(cleanPaths(shippedRules()), ", "), o.rules)
}

func cleanPaths(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = filepath.Clean(p)
	}
	return out
}

func run(args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "fwd: %v\n", err)
		return exitUsage
	}
	if o.version {
		fmt.Fprintln(os.Stdout, "fwd", buildinfo.Get())
		return exitOK
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))

	path, err := rulesPath(o, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitBadRules
	}
	// The first load is a reload like any other, into an engine that
	// has no table (and would drop everything: fail closed).
	d := &daemon{o: o, path: path, ropts: rules.Options{MaxRules: o.maxRules, MaxFileBytes: o.maxFileBytes}, log: log, shipped: path != o.rules}
	if o.metrics != "" {
		d.obs = observe.NewRecorder()
	}
	d.initSystemd()
	if err := d.load(); err != nil {
		printRulesError(stderr, path, err)
		return exitBadRules
	}

	// Signals first: a SIGTERM during startup is handled once installed.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	// One fwd per network namespace, checked before any rule or queue is
	// touched: a second one would take the chains over and its stop
	// would remove them (issue 16).
	lock, err := netnslock.Acquire(o.ownerLock)
	if err != nil {
		log.Error("cannot start: another fwd owns this network namespace's firewall; stop it first", "err", err)
		return exitFailure
	}
	defer lock.Close()

	// The flow log, once the rules are good and this fwd owns the
	// namespace; the workers that write to it start below.
	if d.flows, err = openFlowLog(o.flowLog, log); err != nil {
		log.Error("cannot start", "err", err)
		return exitFailure
	}
	if d.flows != nil {
		// After the engine's stop (in every return below): nothing
		// logs flows any more.
		defer func() {
			if err := d.flows.Close(); err != nil {
				log.Error("flow log", "err", err)
			}
		}()
	}

	// Interfaces before the queues: groups attached to interfaces
	// decide the first packet already.
	d.startLinks()
	defer d.stopLinks()
	if err := d.start(); err != nil {
		log.Error("cannot start", "err", err)
		return exitFailure
	}
	if err := d.serveControl(); err != nil {
		log.Error("cannot start", "err", err)
		if err := d.stop(); err != nil {
			log.Error("stop", "err", err)
		}
		return exitFailure
	}
	if err := d.serveMetrics(); err != nil {
		log.Error("cannot start", "err", err)
		if err := d.stop(); err != nil {
			log.Error("stop", "err", err)
		}
		return exitFailure
	}
	d.startReconcile(o.reconcile)
	d.startExpiry()
	d.startQueueWatch()
	d.notifyReady()
	for {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case err := <-d.qw.fatal:
			d.giveUp(err)
			return exitFailure
		}
		switch sig {
		case syscall.SIGHUP:
			d.reload()
		case syscall.SIGUSR1:
			d.logStats()
		default:
			log.Info("stopping", "signal", sig.String())
			if err := d.stop(); err != nil {
				log.Error("stop", "err", err)
				return exitFailure
			}
			return exitOK
		}
	}
}

// printRulesError says why the rules file kept fwd from starting: every
// error of an invalid file, one per line.
func printRulesError(w io.Writer, path string, err error) {
	var el rules.ErrorList
	if errors.As(err, &el) {
		fmt.Fprintf(w, "fwd: %s has %d error(s), not starting:\n", path, el.Count())
		for _, e := range el {
			fmt.Fprintf(w, "  %s\n", e)
		}
		return
	}
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprint(w, missingRules(path, shippedRules()))
		return
	}
	if e := (*lifecycle.Error)(nil); errors.As(err, &e) {
		err = errors.New(e.Message)
	}
	fmt.Fprintf(w, "fwd: cannot load %s, not starting: %v\n", path, err)
}

// missingRules says that the rules file given with --rules does not
// exist and how to create it: from the first of shipped (the places
// the shipped rules may be) that exists, else from the source tree's
// rules/default.yaml.
func missingRules(path string, shipped []string) string {
	from := "rules/default.yaml"
	where := " (in fwd's source tree)"
	for _, p := range shipped {
		if _, err := os.Stat(p); err == nil {
			from, where = filepath.Clean(p), ""
			break
		}
	}
	return fmt.Sprintf("fwd: rules file %s does not exist, not starting. Create it from the rules shipped with fwd%s, then edit it:\n"+
		"  install -D -m 0644 %s %s\n", path, where, from, path)
}

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
	links linkWatch
	qw    queueWatch
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
	loop := nfq.NewLoop() // one thread serves the queues, a busy queue gets its own (nfq.Loop)
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
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.inst.Install(ctx, d.kcfg); err != nil {
		d.eng.Stop()
		return err
	}
	d.log.Info("fwd running",
		"rules", d.path, "hash", short(table.File().Hash),
		"queues", d.o.queues, "queue_num", d.o.queueNum, "queue_io", d.o.queueIO,
		"fail_open", d.o.failOpen, "egress_hooked", d.kcfg.Egress)
	return nil
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
