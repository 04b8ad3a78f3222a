package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/fleet"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/observe"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// DefaultStateDir is where fleet mode keeps its last good snapshot and
// its lease.
const DefaultStateDir = "/var/lib/fwd"

// fleetOptions are the flags of fleet mode (--store and its company).
type fleetOptions struct {
	store     string
	prefix    string
	cert, key string
	ca        string
	host      string
	stateDir  string
	addrs     string
	ttl       time.Duration
	// parsed by check
	st      fleet.Store
	layout  fleet.Layout
	addrIPs []netip.Addr
}

func (o *fleetOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.store, "store", "", "fleet mode: the etcd `URLS` the rules come from, comma-separated: etcd://HOST:PORT or unix://PATH (the rules file is not read)")
	fs.StringVar(&o.prefix, "store-prefix", fleet.DefaultPrefix, "fleet mode: the key `prefix` of this fleet in the store")
	fs.StringVar(&o.cert, "store-cert", "", "fleet mode: TLS client certificate `file` for the store")
	fs.StringVar(&o.key, "store-key", "", "fleet mode: TLS client key `file` for the store")
	fs.StringVar(&o.ca, "store-ca", "", "fleet mode: `file` of the CA certificates the store's servers are checked against")
	fs.StringVar(&o.host, "host-name", "", "fleet mode: this host's `name` in the store (default the host name)")
	fs.StringVar(&o.stateDir, "state-dir", DefaultStateDir, "fleet mode: `dir` for the last good snapshot (enforced at start while the store is down) and the lease")
	fs.StringVar(&o.addrs, "fleet-addr", "", "fleet mode: this host's `addresses`, comma-separated, that its groups' peers allow (default every address of its interfaces but loopback and link-local)")
	fs.DurationVar(&o.ttl, "store-lease-ttl", fleet.DefaultTTL, "fleet mode: the lease of this host's presence: when fwd stops answering the store, its addresses leave its peers' tables after this long (15s to 30s)")
}

func (o *fleetOptions) enabled() bool { return o.store != "" }

func (o *fleetOptions) check(given map[string]bool, allowShortTTL bool) error {
	if !o.enabled() {
		for _, f := range []string{"store-prefix", "store-cert", "store-key", "store-ca", "host-name", "state-dir", "fleet-addr", "store-lease-ttl"} {
			if given[f] {
				return fmt.Errorf("--%s needs --store", f)
			}
		}
		return nil
	}
	if given["rules"] {
		return errors.New("--rules and --store: in fleet mode the rules come from the store")
	}
	var err error
	if o.st, err = fleet.ParseStore(o.store); err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	o.st.CertFile, o.st.KeyFile, o.st.CAFile = o.cert, o.key, o.ca
	if o.layout, err = fleet.NewLayout(o.prefix); err != nil {
		return fmt.Errorf("--store-prefix: %w", err)
	}
	if o.host == "" {
		if o.host, err = os.Hostname(); err != nil {
			return fmt.Errorf("--host-name: %w", err)
		}
	}
	if err := fleet.CheckName(o.host); err != nil {
		return fmt.Errorf("--host-name: %w", err)
	}
	if err := fleet.CheckTTL(o.ttl, allowShortTTL); err != nil {
		return fmt.Errorf("--store-lease-ttl: %w", err)
	}
	if o.addrs != "" {
		for _, s := range strings.Split(o.addrs, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("--fleet-addr %q: %w", s, err)
			}
			o.addrIPs = append(o.addrIPs, a.Unmap())
		}
	}
	return nil
}

// fleetRun is fleet mode in a running fwd: the syncer puts snapshots in
// force through the lifecycle service, the member keeps this host's
// presence.
type fleetRun struct {
	o     *fleetOptions
	log   *slog.Logger
	svc   *lifecycle.Service
	store []netip.AddrPort // the TCP endpoints, always allowed out
	// saved is when the snapshot loaded at start was saved (zero: none).
	saved   time.Time
	started time.Time
	initial *fleet.Snapshot

	client *clientv3.Client
	sync   *fleet.Syncer
	member *fleet.Member
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (f *fleetRun) snapshotPath() string { return filepath.Join(f.o.stateDir, fleet.SnapshotFile) }

// configure makes the service fit fleet mode: no rules file to reload or
// edit, no history of one.
func (f *fleetRun) configure(cfg *lifecycle.ServiceConfig) {
	cfg.Path = f.snapshotPath()
	msg := fmt.Sprintf("fwd runs in fleet mode: its rules come from the store %s (prefix %s); change them there", f.o.store, f.o.layout.Prefix)
	cfg.ReadOnly, cfg.NoReload = msg, msg
	cfg.History = nil
}

// installInitial puts the last good snapshot in force before the queues
// start (or, with none, only the store's allowance: fail closed until
// the first sync).
func (f *fleetRun) installInitial(ctx context.Context) error {
	f.started = time.Now()
	if err := os.MkdirAll(f.o.stateDir, 0o700); err != nil {
		return fmt.Errorf("--state-dir: %w", err)
	}
	var err error
	if f.store, err = f.o.st.Addrs(ctx); err != nil {
		// At boot the network (and DNS) may not be up yet: the store's
		// names stay unresolved and nothing is allowed for them; give
		// --store addresses to have them always allowed.
		f.log.Warn("fleet store endpoint not resolved: traffic to it is not always allowed", "err", err)
	}
	snap, saved, err := fleet.LoadSnapshot(f.snapshotPath(), rules.Options{})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.log.Warn("fleet mode: no saved snapshot: everything but the store is dropped until the first sync", "state_dir", f.o.stateDir)
		_, err := f.svc.Install(ctx, f.withStore(&rules.File{Version: 1}), "no fleet snapshot yet")
		return err
	case err != nil:
		f.log.Error("fleet mode: saved snapshot refused: everything but the store is dropped until the first sync", "err", err)
		_, err := f.svc.Install(ctx, f.withStore(&rules.File{Version: 1}), "no fleet snapshot yet")
		return err
	}
	f.initial, f.saved = snap, saved
	f.log.Info("fleet snapshot loaded", "rev", snap.Revision, "hash", short(snap.Hash()), "saved", saved)
	_, err = f.svc.Install(ctx, f.withStore(snap.File), fmt.Sprintf("saved fleet snapshot at revision %d", snap.Revision))
	return err
}

// withStore is f with the traffic to the store's TCP endpoints allowed
// out, when f restricts egress at all; its Hash covers the addition.
func (f *fleetRun) withStore(file *rules.File) *rules.File {
	out := *file
	if len(f.store) > 0 && engine.RestrictsEgress(file) {
		g := rules.Group{Name: "fwd-store", Description: "the fleet store's endpoints (always allowed)"}
		for _, ap := range f.store {
			g.Egress = append(g.Egress, rules.Rule{
				Proto:    rules.Proto{Num: ipproto.TCP},
				Ports:    []rules.PortRange{{Lo: ap.Port(), Hi: ap.Port()}},
				Peers:    []string{ap.Addr().String()},
				Prefixes: []netip.Prefix{netip.PrefixFrom(ap.Addr(), ap.Addr().BitLen())},
			})
		}
		out.Groups = append(append([]rules.Group(nil), file.Groups...), g)
	}
	out.Hash = fleet.Hash(&out)
	return &out
}

// start connects to the store and starts the syncer and the member.
func (f *fleetRun) start(allowShortTTL bool) error {
	c, err := f.o.st.Dial()
	if err != nil {
		return err
	}
	addrs := f.o.addrIPs
	if len(addrs) == 0 {
		if addrs, err = lifecycle.HostAddrs(); err == nil && len(addrs) == 0 {
			err = errors.New("no address on any interface but loopback and link-local: give --fleet-addr")
		}
		if err != nil {
			c.Close()
			return err
		}
	}
	f.member, err = fleet.NewMember(fleet.MemberConfig{Client: c, Layout: f.o.layout, Host: f.o.host,
		Addrs: addrs, TTL: f.o.ttl, AllowShortTTL: allowShortTTL, StatusJitter: time.Second,
		LeasePath: filepath.Join(f.o.stateDir, fleet.LeaseFile), Log: f.log})
	if err != nil {
		c.Close()
		return err
	}
	f.client = c
	f.sync = fleet.NewSyncer(fleet.SyncConfig{Client: c, Layout: f.o.layout, Host: f.o.host,
		Initial: f.initial, Apply: f.apply, Report: f.member.SetStatus,
		SnapshotPath: f.snapshotPath(), Log: f.log})
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Add(2)
	go func() { defer f.wg.Done(); _ = f.sync.Run(ctx) }()
	go func() { defer f.wg.Done(); _ = f.member.Run(ctx) }()
	f.log.Info("fleet mode", "store", f.o.store, "prefix", f.o.layout.Prefix, "host", f.o.host, "addrs", fmt.Sprint(addrs), "lease_ttl", f.o.ttl)
	return nil
}

func (f *fleetRun) apply(s *fleet.Snapshot) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := f.svc.Install(ctx, f.withStore(s.File), fmt.Sprintf("fleet snapshot at revision %d", s.Revision))
	return err
}

// stop stops syncing (the lease is left to expire, or to be resumed by
// the next start).
func (f *fleetRun) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.wg.Wait()
	_ = f.client.Close()
}

// counters are fleet mode's lines of fwctl status.
func (f *fleetRun) counters(c map[string]uint64) {
	if f.sync == nil {
		return
	}
	st := f.sync.Status()
	c["fleet_revision"] = uint64(st.Revision)
	c["fleet_staleness_seconds"] = uint64(f.staleness(st).Seconds())
	c["fleet_snapshots"] = st.Snapshots
	c["fleet_refused"] = st.Refused
	c["fleet_resyncs"] = st.Resyncs
	if st.Error != "" {
		c["fleet_error"] = 1
	} else {
		c["fleet_error"] = 0
	}
}

// fleetStats are the fleet metrics (zero outside fleet mode).
func (d *daemon) fleetStats() observe.FleetStats {
	f := d.fleet
	if f == nil || f.sync == nil {
		return observe.FleetStats{}
	}
	st := f.sync.Status()
	return observe.FleetStats{Revision: st.Revision, StalenessSeconds: f.staleness(st).Seconds(),
		Snapshots: st.Snapshots, Refused: st.Refused, Resyncs: st.Resyncs, Error: st.Error != ""}
}

// fleetStatus is fleet mode's part of fwctl status (nil outside it).
func (d *daemon) fleetStatus() *control.FleetStatus {
	f := d.fleet
	if f == nil || f.sync == nil {
		return nil
	}
	st := f.sync.Status()
	return &control.FleetStatus{Store: f.o.store, Host: f.o.host, Revision: st.Revision, Hash: st.Hash,
		StalenessSeconds: f.staleness(st).Seconds(), Error: st.Error}
}

// staleness is how long ago the store last answered; before it ever
// did, how old the snapshot in force is (or how long fwd has run
// without one).
func (f *fleetRun) staleness(st fleet.SyncStatus) time.Duration {
	switch {
	case !st.Contact.IsZero():
		return time.Since(st.Contact)
	case !f.saved.IsZero():
		return time.Since(f.saved)
	default:
		return time.Since(f.started)
	}
}
