// Package kernel installs and removes fwd's netfilter rules with
// iptables-restore and ip6tables-restore.
//
// fwd owns every chain whose name starts with ChainPrefix, and the rules in
// other chains that jump to one. Everything else in the tables is left as
// it is. An install reconciles: it reads iptables-save, deletes fwd's jumps
// wherever they are (however many copies a crash left), flushes and fills
// its chains, removes chains it no longer needs and adds one jump per hook,
// all in one iptables-restore --noflush per family, so each table changes
// in one transaction. Remove does the same with nothing wanted, and deletes
// a table that only existed because of fwd. Check compares the tables
// with what Install put there (fwd's chains, their rules, the jumps to
// them and that each jump comes first) and names every difference, so
// that the daemon can notice when someone else changed or removed its
// rules and install them again.
//
// The chains (filter table, per family):
//
//	FWD-INPUT  (jumped to first from INPUT)
//	  -i lo                                  ACCEPT
//	  ctstate RELATED,ESTABLISHED            ACCEPT
//	  IPv6 neighbour discovery and MLD       ACCEPT   (untracked by conntrack)
//	  ctstate INVALID                        DROP
//	  connmark has the accept mark           ACCEPT   (a flow fwd accepted before)
//	  everything else (NEW, UNTRACKED)       NFQUEUE  --queue-balance a:b [--queue-bypass]
//	FWD-OUTPUT (jumped to first from OUTPUT, only when the rules restrict egress)
//	  the same with -o lo
//
// and, in the security table, which runs after filter on the same hooks,
// FWD-SAVE jumped to from INPUT (and OUTPUT): a packet carrying the accept
// mark, which the queue's accept verdict sets, has it saved to the
// connmark. A one-way flow (a UDP stream, retransmitted SYNs) stays NEW in
// conntrack; the connmark is how its later packets are accepted without
// being queued again.
//
// With Config.Containers, new flows to local addresses are decided earlier,
// in mangle FWD-PREROUTING (before any DNAT, so that published container
// ports obey the rules), and flows routed to containers in filter
// FWD-FORWARD, jumped to from FORWARD and Docker's DOCKER-USER: see
// containers.go.
package kernel

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// ChainPrefix starts the name of every chain fwd owns.
const ChainPrefix = "FWD-"

// Chain names.
const (
	ChainInput  = "FWD-INPUT"
	ChainOutput = "FWD-OUTPUT"
	ChainSave   = "FWD-SAVE"
)

// Tables fwd touches, in the order they are written: the save rule exists
// before the queue rule that needs it.
var tables = [...]string{"security", "mangle", "filter"}

// Family is an address family, chosen by which iptables binary runs.
type Family uint8

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// families lists both families in install order.
var families = [...]Family{IPv4, IPv6}

// DefaultMark is the packet and connection mark bit that says "fwd accepted
// this flow".
const DefaultMark uint32 = 0x20000000

// Config says what to install.
type Config struct {
	// QueueBase and QueueCount select the queues new flows are balanced
	// over: QueueBase .. QueueBase+QueueCount-1. QueueCount >= 1.
	QueueBase  uint16
	QueueCount uint16
	// FailOpen adds --queue-bypass: with no program bound to a queue the
	// kernel accepts instead of dropping.
	FailOpen bool
	// Egress hooks OUTPUT too. Set it when the rules restrict egress (some
	// group has an egress list); otherwise outbound traffic is not queued.
	Egress bool
	// Mark is the accept mark (a mask of one or more bits). Zero means
	// DefaultMark.
	Mark uint32
	// Containers decides new flows to local addresses before DNAT (mangle
	// PREROUTING), so that published container ports obey the groups, and
	// new flows routed to containers' addresses (FORWARD, DOCKER-USER):
	// see containers.go.
	Containers bool
	// ContainerEgress, with Containers, queues containers' new outbound
	// flows too, marked with EgressMark, for the egress rules.
	ContainerEgress bool
	// EgressMark is the mark bit of ContainerEgress. Zero means
	// DefaultEgressMark.
	EgressMark uint32
}

func (c Config) validate() error {
	if c.QueueCount == 0 {
		return fmt.Errorf("queue count is 0")
	}
	if int(c.QueueBase)+int(c.QueueCount)-1 > 0xffff {
		return fmt.Errorf("queues %d..%d exceed 65535", c.QueueBase, int(c.QueueBase)+int(c.QueueCount)-1)
	}
	if c.Containers && c.egressMark()&c.mark() != 0 {
		return fmt.Errorf("egress mark %#x overlaps the accept mark %#x", c.egressMark(), c.mark())
	}
	return nil
}

func (c Config) mark() uint32 {
	if c.Mark == 0 {
		return DefaultMark
	}
	return c.Mark
}

// RestoreMode says whether iptables-restore keeps what it is not told
// about.
type RestoreMode uint8

const (
	// NoFlush keeps the rest of each table (iptables-restore --noflush).
	NoFlush RestoreMode = iota
	// Flush replaces each named table with the input; "*t\nCOMMIT\n"
	// deletes table t under the nf_tables backend.
	Flush
)

// Runner runs iptables-save and iptables-restore for one family. ExecRunner
// is the real one; tests use a fake.
type Runner interface {
	Save(ctx context.Context, fam Family) (string, error)
	Restore(ctx context.Context, fam Family, input string, mode RestoreMode) error
}

// Installer installs and removes fwd's rules. Its methods must not be
// called concurrently.
type Installer struct {
	run Runner
	log *slog.Logger
	// ours records, per family, the tables that held nothing but fwd's
	// objects (or did not exist) when fwd first installed: Remove deletes
	// them when they end up empty.
	ours map[Family]map[string]bool
	// last is what the kernel showed after the last Install, for Check;
	// nil after Remove.
	last *installed
	// created records, per family, the user chains (DOCKER-USER) fwd
	// created because they did not exist: Remove deletes them when
	// nothing else came to use them.
	created map[Family]createdChains
}

// New returns an Installer that works through r.
func New(r Runner, log *slog.Logger) *Installer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Installer{run: r, log: log, ours: map[Family]map[string]bool{}, created: map[Family]createdChains{}}
}

// Install makes the kernel hold exactly the rules cfg describes, for both
// families, whatever fwd left before (a previous run, a crash, another
// Config). On error nothing of fwd's stays installed.
func (in *Installer) Install(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	for _, fam := range families {
		if err := in.apply(ctx, fam, &cfg); err != nil {
			if rerr := in.Remove(ctx); rerr != nil {
				in.log.Error("removing rules after a failed install", "err", rerr)
			}
			return fmt.Errorf("install %s rules: %w", fam, err)
		}
	}
	in.snapshot(ctx, cfg)
	in.log.Info("kernel rules installed", "queues", queueSpec(cfg), "fail_open", cfg.FailOpen, "egress", cfg.Egress, "mark", fmt.Sprintf("%#x", cfg.mark()))
	return nil
}

// Remove deletes everything fwd installed, for both families, and the
// tables that existed only because of fwd. It tries both families and
// returns the errors of both.
func (in *Installer) Remove(ctx context.Context) error {
	in.last = nil
	var errs []error
	for _, fam := range families {
		if err := in.apply(ctx, fam, nil); err != nil {
			errs = append(errs, fmt.Errorf("remove %s rules: %w", fam, err))
			continue
		}
		if err := in.dropEmptyTables(ctx, fam); err != nil {
			errs = append(errs, fmt.Errorf("remove %s tables: %w", fam, err))
		}
	}
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	in.log.Info("kernel rules removed")
	return nil
}

// apply reconciles one family to cfg; a nil cfg removes everything.
func (in *Installer) apply(ctx context.Context, fam Family, cfg *Config) error {
	saved, err := in.run.Save(ctx, fam)
	if err != nil {
		return err
	}
	cur := ParseSave(saved)
	if cfg != nil {
		in.noteCreated(fam, cur, *cfg)
		in.noteTables(fam, cur)
	}
	script := Script(fam, cur, cfg)
	if script == "" {
		return nil
	}
	in.log.Debug("iptables-restore", "family", fam.String(), "input", script)
	return in.run.Restore(ctx, fam, script, NoFlush)
}

// noteTables records, the first time, which of our tables are fwd's alone.
func (in *Installer) noteTables(fam Family, cur Tables) {
	if in.ours[fam] != nil {
		return
	}
	m := map[string]bool{}
	for _, name := range tables {
		t, ok := cur[name]
		created := in.created[fam][name]
		m[name] = !ok || t.emptyWithout(func(c string) bool { return isOurs(c) || slices.Contains(created, c) })
	}
	in.ours[fam] = m
}

func (in *Installer) dropEmptyTables(ctx context.Context, fam Family) error {
	ours := in.ours[fam]
	if len(ours) == 0 {
		return nil
	}
	saved, err := in.run.Save(ctx, fam)
	if err != nil {
		return err
	}
	cur := ParseSave(saved)
	if drop := dropCreated(cur, in.created[fam]); drop != "" {
		if err := in.run.Restore(ctx, fam, drop, NoFlush); err != nil {
			return err
		}
		delete(in.created, fam)
		if saved, err = in.run.Save(ctx, fam); err != nil {
			return err
		}
		cur = ParseSave(saved)
	}
	var b strings.Builder
	for _, name := range tables {
		if t, ok := cur[name]; ok && ours[name] && t.emptyWithout(nil) {
			fmt.Fprintf(&b, "*%s\nCOMMIT\n", name)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return in.run.Restore(ctx, fam, b.String(), Flush)
}

func isOurs(chain string) bool { return strings.HasPrefix(chain, ChainPrefix) }

func queueSpec(cfg Config) string {
	if cfg.QueueCount == 1 {
		return fmt.Sprintf("--queue-num %d", cfg.QueueBase)
	}
	return fmt.Sprintf("--queue-balance %d:%d", cfg.QueueBase, int(cfg.QueueBase)+int(cfg.QueueCount)-1)
}

// Script returns the iptables-restore --noflush input that takes the
// family's tables from cur to cfg (nil: nothing of fwd's). It is empty when
// there is nothing to do.
func Script(fam Family, cur Tables, cfg *Config) string {
	want := map[string][]chainSpec{}
	if cfg != nil {
		want = wanted(fam, *cfg)
	}
	var b strings.Builder
	for _, name := range tables {
		t := cur[name]
		chains := want[name]
		if t == nil && len(chains) == 0 {
			continue
		}
		var ourChains []string
		var jumps []string
		if t != nil {
			for _, c := range t.Chains {
				if isOurs(c.Name) {
					ourChains = append(ourChains, c.Name)
				}
			}
			for _, r := range t.Rules {
				if r.jumpsTo(isOurs) {
					jumps = append(jumps, r.Spec)
				}
			}
		}
		if len(chains) == 0 && len(ourChains) == 0 && len(jumps) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", name)
		// Declaring a chain creates it or, when it exists, flushes it.
		for _, c := range ourChains {
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
		for _, c := range chains {
			if !slices.Contains(ourChains, c.name) {
				fmt.Fprintf(&b, ":%s - [0:0]\n", c.name)
			}
		}
		// A chain of others that fwd jumps from (DOCKER-USER) is declared
		// only when missing: declaring an existing chain flushes it.
		for _, c := range userChains(chains) {
			if !t.hasChain(c) {
				fmt.Fprintf(&b, ":%s - [0:0]\n", c)
			}
		}
		for _, j := range jumps {
			fmt.Fprintf(&b, "-D %s\n", j)
		}
		for _, c := range ourChains {
			if !slices.ContainsFunc(chains, func(s chainSpec) bool { return s.name == c }) {
				fmt.Fprintf(&b, "-X %s\n", c)
			}
		}
		for _, c := range chains {
			for _, r := range c.rules {
				fmt.Fprintf(&b, "-A %s %s\n", c.name, r)
			}
		}
		for _, c := range chains {
			for _, from := range c.from {
				fmt.Fprintf(&b, "-I %s 1 -j %s\n", from, c.name)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

type chainSpec struct {
	name  string
	from  []string // built-in chains that jump to it, first
	rules []string
}

// wanted returns fwd's chains for one family, per table.
func wanted(fam Family, cfg Config) map[string][]chainSpec {
	mark := fmt.Sprintf("%#x/%#x", cfg.mark(), cfg.mark())
	queue := "-j NFQUEUE " + queueSpec(cfg)
	if cfg.FailOpen {
		queue += " --queue-bypass"
	}
	chain := func(name, hook, lo string) chainSpec {
		rules := []string{
			lo + " lo -j ACCEPT",
			"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		}
		if fam == IPv6 {
			rules = append(rules, ndRules()...)
		}
		rules = append(rules,
			"-m conntrack --ctstate INVALID -j DROP",
			"-m connmark --mark "+mark+" -j ACCEPT",
			queue,
		)
		return chainSpec{name: name, from: []string{hook}, rules: rules}
	}
	filter := []chainSpec{chain(ChainInput, "INPUT", "-i")}
	saveFrom := []string{"INPUT"}
	if cfg.Egress {
		filter = append(filter, chain(ChainOutput, "OUTPUT", "-o"))
		saveFrom = append(saveFrom, "OUTPUT")
	}
	var mangle []chainSpec
	if cfg.Containers {
		// A flow decided in PREROUTING reaches INPUT with the accept mark:
		// accept it there, first, rather than queue it again. First: every
		// connection fwd accepts passes here once, on the thread that gave
		// the verdict, and the checks above the queue rule cannot apply to
		// it (it was NEW, and not from lo, in PREROUTING; conntrack does
		// not change its state between the two hooks).
		in := &filter[0]
		in.rules = slices.Insert(in.rules, 0, "-m mark --mark "+mark+" -j ACCEPT")
		pre, fwd := containerChains(cfg, mark, queue)
		mangle = append(mangle, pre)
		filter = append(filter, fwd)
		saveFrom = append(saveFrom, "FORWARD")
	}
	save := chainSpec{
		name: ChainSave,
		from: saveFrom,
		rules: []string{
			fmt.Sprintf("-m mark --mark %s -j CONNMARK --save-mark --nfmask %#x --ctmask %#x", mark, cfg.mark(), cfg.mark()),
		},
	}
	out := map[string][]chainSpec{
		"filter":   filter,
		"security": {save},
	}
	if len(mangle) > 0 {
		out["mangle"] = mangle
	}
	return out
}

// ndRules accept IPv6 neighbour discovery (router and neighbour
// solicitation and advertisement, redirect: on-link only, hop limit 255)
// and multicast listener discovery (link-local only, hop limit 1). Conntrack
// does not track them, and IPv6 does not work without them; a security
// group never sees them either. They are built from the definition that
// check and replay use too (admit.go).
func ndRules() []string { return ndRuleSpecs() }
