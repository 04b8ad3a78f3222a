// Command fwd is the firewall daemon: it loads a rules file, installs its
// netfilter rules (new connections go to NFQUEUE), answers every queued
// packet from the compiled table, reloads on SIGHUP (all or nothing) and
// removes everything it installed on SIGTERM or SIGINT.
//
// Usage:
//
//	fwd [--rules FILE] [--queues N] [--queue-num BASE] [--queue-io batch|simple] [--queue-nap D] [--queue-maxlen N]
//	    [--fail-open] [--log-level LEVEL] [--reconcile-interval D] [--queue-watch-interval D]
//	    [--max-rules N] [--max-file-bytes N]
//	    [--socket PATH] [--socket-group GROUP]
//	    [--flow-log FILE [--flow-log-max-size SIZE] [--flow-log-files N] [--flow-log-rate N]]
//	    [--metrics HOST:PORT [--metrics-public]]
//	    [--failsafe-ssh] [--refuse-lockout] [--ssh-port PORTS]
//	    [--store URLS [--store-prefix P] [--store-cert F --store-key F] [--store-ca F]
//	     [--host-name NAME] [--state-dir DIR] [--fleet-addr ADDRS] [--store-lease-ttl D]]
//	    [--containers=false | --container-egress]
//	fwd --version
//
// With --containers (the default) new connections to the host's own
// addresses are queued from mangle PREROUTING, before any DNAT, so that
// ports a container runtime publishes obey the rules by the port the
// client connected to; connections routed to containers' addresses are
// queued from FORWARD and DOCKER-USER; --container-egress puts containers'
// outbound connections under the egress rules (see containers.go and
// internal/kernel's containers.go).
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
// With --store fwd runs in fleet mode (internal/fleet): its rules come
// from etcd instead of a rules file, the groups assigned to this host
// with their group references resolved to the live members' addresses;
// the last good snapshot is saved in --state-dir and enforced at the
// next start before the store answers (fleet.go).
//
// Exit codes: 0 clean stop, 1 runtime failure, 2 usage, 3 bad rules file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/fwd-project/fwd/internal/buildinfo"
	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/fleet"
	"github.com/fwd-project/fwd/internal/kernel"
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
	queueNap   time.Duration
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
	// fleet: fleet mode, the rules from etcd (fleet.go).
	fleet fleetOptions
	// containers: the container hooks (containers.go).
	containers containerOptions
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
	fs.DurationVar(&o.queueNap, "queue-nap", 0, "with --queue-io=batch, pause this long after a batch of packets so that more gather (at most 1ms): less CPU for fwd, but on Linux 6.x the kernel's table of waiting packets resizes with every batch, and new flows/s fall (bench/RESULTS.md); 0 answers at once")
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
	o.fleet.register(fs)
	o.containers.register(fs)
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
	return o, o.check(given, *level, *mark, *flowLogSize)
}

// check validates the parsed flags and fills what they compute (log
// level, mark); given names the flags set on the command line.
func (o *options) check(given map[string]bool, level, mark, flowLogSize string) error {
	if err := o.containers.validate(); err != nil {
		return err
	}
	if err := o.logLevel.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	m, err := strconv.ParseUint(mark, 0, 32)
	if err != nil || m == 0 {
		return fmt.Errorf("--mark %q: want a non-zero 32-bit number", mark)
	}
	o.mark = uint32(m)
	if o.queues < 1 || o.queueNum < 0 || o.queueNum+o.queues-1 > 0xffff {
		return fmt.Errorf("--queue-num %d --queues %d: queues must lie within 0..65535", o.queueNum, o.queues)
	}
	if o.limitEntries < 1 || o.limitEntries > 1<<24 {
		return fmt.Errorf("--limit-entries %d: want 1..16777216", o.limitEntries)
	}
	if o.copyRange < 64 || o.copyRange > 0xffff {
		return fmt.Errorf("--copy-range %d: want 64..65535", o.copyRange)
	}
	if o.queueIO != "batch" && o.queueIO != "simple" {
		return fmt.Errorf("--queue-io %q: want batch or simple", o.queueIO)
	}
	if o.queueNap < 0 || o.queueNap > time.Millisecond {
		return fmt.Errorf("--queue-nap %v: want 0..1ms", o.queueNap)
	}
	if o.queueLen < 1 {
		return fmt.Errorf("--queue-maxlen %d: want at least 1", o.queueLen)
	}
	if o.reconcile < 0 {
		return fmt.Errorf("--reconcile-interval %v: want 0 (never) or more", o.reconcile)
	}
	if o.maxRules < 1 {
		return fmt.Errorf("--max-rules %d: want at least 1", o.maxRules)
	}
	if o.maxFileBytes < 1 {
		return fmt.Errorf("--max-file-bytes %d: want at least 1", o.maxFileBytes)
	}
	if err := o.watch.check(); err != nil {
		return err
	}
	if err := o.safety.check(); err != nil {
		return err
	}
	if err := o.flowLog.check(flowLogSize, given); err != nil {
		return err
	}
	if err := o.audit.check(); err != nil {
		return err
	}
	if err := o.fleet.check(given, o.test.allowShortTTL()); err != nil {
		return err
	}
	if o.metrics != "" {
		if err := observe.CheckAddr(o.metrics, o.metricsPublic); err != nil {
			return fmt.Errorf("--metrics %w", err)
		}
	}
	return nil
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

	d, code := newDaemon(o, log, stderr)
	if d == nil {
		return code
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
	for _, serve := range []func() error{d.serveControl, d.serveMetrics, d.startFleet} {
		if err := serve(); err != nil {
			log.Error("cannot start", "err", err)
			if err := d.stop(); err != nil {
				log.Error("stop", "err", err)
			}
			return exitFailure
		}
	}
	d.startReconcile(o.reconcile)
	d.startExpiry()
	d.startQueueWatch()
	d.notifyReady()
	return d.wait(sigs)
}

// wait serves signals until one stops fwd (or the queue watchdog gives
// up), and returns the exit code.
func (d *daemon) wait(sigs <-chan os.Signal) int {
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
			d.log.Info("stopping", "signal", sig.String())
			if err := d.stop(); err != nil {
				d.log.Error("stop", "err", err)
				return exitFailure
			}
			return exitOK
		}
	}
}

// newDaemon finds the rules (a file, or in fleet mode the saved
// snapshot) and loads them into a daemon that has no queue yet. The
// first load is a reload like any other, into an engine that has no
// table (and would drop everything: fail closed). A nil daemon comes
// with the exit code.
func newDaemon(o options, log *slog.Logger, stderr io.Writer) (*daemon, int) {
	path, err := filepath.Join(o.fleet.stateDir, fleet.SnapshotFile), error(nil)
	if !o.fleet.enabled() {
		path, err = rulesPath(o, log)
	}
	if err != nil {
		log.Error("cannot start", "err", err)
		return nil, exitBadRules
	}
	d := &daemon{o: o, path: path, ropts: rules.Options{MaxRules: o.maxRules, MaxFileBytes: o.maxFileBytes}, log: log, shipped: path != o.rules && !o.fleet.enabled()}
	if o.metrics != "" {
		d.obs = observe.NewRecorder()
	}
	if o.fleet.enabled() {
		d.fleet = &fleetRun{o: &d.o.fleet, log: log}
	}
	d.initSystemd()
	if err := d.load(); err != nil {
		printRulesError(stderr, path, err)
		return nil, exitBadRules
	}

	return d, exitOK
}
