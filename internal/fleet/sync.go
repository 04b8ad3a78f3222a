package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fwd-project/fwd/internal/rules"
)

// Defaults of SyncConfig.
const (
	DefaultPageSize   = 500
	DefaultQuiet      = 20 * time.Millisecond
	DefaultMaxWait    = 200 * time.Millisecond
	DefaultCheckEvery = 30 * time.Second
	DefaultProbeEvery = 5 * time.Second
	DefaultRetry      = time.Second
	// MaxRetry bounds the pause between attempts to reach the store.
	MaxRetry = 30 * time.Second
)

// SyncConfig configures a Syncer.
type SyncConfig struct {
	Client *clientv3.Client
	Layout Layout
	// Host is this host's name (its assign/ and hosts/ keys).
	Host  string
	Rules rules.Options
	// Initial, when set, is the snapshot enforced already (loaded from
	// disk): a first sync that resolves to the same hash applies nothing.
	Initial *Snapshot
	// Apply puts a new valid snapshot in force; an error refuses it (the
	// previous stays). It runs on the syncer's goroutine.
	Apply func(*Snapshot) error
	// Report, when set, is told what this host enforces after every
	// applied or refused snapshot (for status/HOST).
	Report func(StatusValue)
	// Received, when set, is called with the revision of every watch
	// response that changed the copy, as it is applied (before the
	// coalescing wait and the build): the benchmark's delivery time.
	Received func(rev int64)
	// SnapshotPath, when set, is where every applied snapshot is saved
	// (Snapshot.Save), for LoadSnapshot at the next start.
	SnapshotPath string
	// PageSize is the number of keys per page of a full read.
	PageSize int64
	// Quiet and MaxWait coalesce bursts: a snapshot is built once no
	// watch response came for Quiet, or MaxWait after the first change.
	Quiet, MaxWait time.Duration
	// CheckEvery is how often the copy is compared with a keys-only read
	// of the store at the copy's revision (a mismatch reads everything
	// again); ProbeEvery how often the store is asked for its revision
	// to measure staleness; Retry the pause before reconnecting.
	CheckEvery, ProbeEvery, Retry time.Duration
	Log                           *slog.Logger
	Now                           func() time.Time
}

// errResync ends a session so that the next one reads everything again
// at once.
var errResync = errors.New("resync")

// Syncer keeps one host's snapshot in step with the store: one
// consistent paginated read of the prefix pinned at a revision R, then
// one watch from R+1; each watch response is applied whole before a
// snapshot is built, so a host never enforces half a transaction.
type Syncer struct {
	cfg  SyncConfig
	log  *slog.Logger
	st   *state
	b    builder
	last *Snapshot // the snapshot in force

	mu     sync.Mutex // guards status
	status SyncStatus
}

// SyncStatus is what a Syncer reports.
type SyncStatus struct {
	Revision int64     // of the snapshot in force (0: none)
	Hash     string    // its fleet hash
	Applied  time.Time // when it was put in force
	// Contact is when the store last answered (zero: never since start).
	Contact time.Time
	// Error is why the last snapshot was refused ("" when the last one
	// was applied).
	Error string
	// Counters: snapshots applied, refused, compiled (a change that
	// touches nothing this host enforces compiles nothing), full
	// re-reads after the first, duplicate events skipped, consistency
	// checks failed.
	Snapshots, Refused, Compiles, Resyncs, Duplicates, CheckMismatches uint64
}

// Staleness is how long ago the store last answered at now.
func (s SyncStatus) Staleness(now time.Time) time.Duration {
	if s.Contact.IsZero() {
		return 0
	}
	return now.Sub(s.Contact)
}

// NewSyncer returns a Syncer for cfg; Run starts it.
func NewSyncer(cfg SyncConfig) *Syncer {
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	if cfg.MaxWait < cfg.Quiet {
		cfg.MaxWait = max(DefaultMaxWait, cfg.Quiet)
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = DefaultCheckEvery
	}
	if cfg.ProbeEvery <= 0 {
		cfg.ProbeEvery = DefaultProbeEvery
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Syncer{cfg: cfg, log: cfg.Log, last: cfg.Initial}
	s.b = builder{host: cfg.Host, opts: cfg.Rules, now: cfg.Now}
	if cfg.Initial != nil {
		s.status.Revision, s.status.Hash = cfg.Initial.Revision, cfg.Initial.Hash()
	}
	return s
}

// Status returns what the syncer enforces and how fresh it is.
func (s *Syncer) Status() SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *Syncer) update(fn func(*SyncStatus)) {
	s.mu.Lock()
	fn(&s.status)
	s.mu.Unlock()
}

func (s *Syncer) touch() { s.update(func(st *SyncStatus) { st.Contact = s.cfg.Now() }) }

// Run syncs until ctx ends; a lost store is retried every Retry while
// the snapshot in force stays.
func (s *Syncer) Run(ctx context.Context) error {
	first := true
	wait := s.cfg.Retry
	for {
		err := s.session(ctx, first)
		first = false
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errResync) {
			s.update(func(st *SyncStatus) { st.Resyncs++ })
			continue
		}
		if s.st != nil && s.Status().Contact.After(time.Now().Add(-wait)) {
			wait = s.cfg.Retry // it worked for a while: start over
		}
		s.log.Warn("fleet store", "err", err, "retry_in", wait)
		// Jittered and doubling up to MaxRetry: a fleet that lost its
		// store does not come back all at once.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait/2 + rand.N(wait)):
		}
		wait = min(2*wait, MaxRetry)
	}
}

// session reads the whole prefix and follows it until an error.
func (s *Syncer) session(ctx context.Context, first bool) error {
	st, err := s.readAll(ctx)
	if err != nil {
		return err
	}
	s.st = st
	s.touch()
	s.rebuild()
	// A member cut from its cluster's leader fails the watch (rather
	// than leave it silent), so the next session picks another.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cfg.Client.Watch(wctx, s.cfg.Layout.Prefix,
		clientv3.WithRange(s.rangeEnd()), clientv3.WithRev(st.rev+1), clientv3.WithProgressNotify())
	return s.follow(ctx, wch)
}

// follow applies watch responses, building after each burst.
func (s *Syncer) follow(ctx context.Context, wch clientv3.WatchChan) error {
	check := time.NewTicker(s.cfg.CheckEvery)
	defer check.Stop()
	probe := time.NewTicker(s.cfg.ProbeEvery)
	defer probe.Stop()
	var (
		quiet    *time.Timer
		quietC   <-chan time.Time
		deadline time.Time
	)
	defer func() {
		if quiet != nil {
			quiet.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case resp, ok := <-wch:
			if !ok {
				return errors.New("watch closed")
			}
			if err := s.take(resp); err != nil {
				return err
			}
			if !s.st.dirty {
				continue
			}
			now := time.Now()
			if quiet == nil {
				deadline = now.Add(s.cfg.MaxWait)
				quiet = time.NewTimer(s.cfg.Quiet)
				quietC = quiet.C
			} else {
				quiet.Reset(min(s.cfg.Quiet, max(deadline.Sub(now), 0)))
			}
		case <-quietC:
			quiet, quietC = nil, nil
			s.rebuild()
		case <-check.C:
			if err := s.check(ctx); err != nil {
				return err
			}
		case <-probe.C:
			if err := s.probe(ctx); err != nil {
				return err
			}
		}
	}
}

// take applies one whole watch response to the copy.
func (s *Syncer) take(resp clientv3.WatchResponse) error {
	if err := resp.Err(); err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) {
			s.log.Info("fleet store compacted past this host's revision: reading everything again", "rev", s.st.rev, "compact_rev", resp.CompactRevision)
			return errResync
		}
		return fmt.Errorf("watch: %w", err)
	}
	s.touch()
	if resp.Header.Revision != 0 && resp.Header.Revision < s.st.rev {
		s.log.Warn("fleet store revision went backwards: reading everything again", "rev", s.st.rev, "store_rev", resp.Header.Revision)
		return errResync
	}
	if resp.IsProgressNotify() {
		return nil
	}
	if n := s.st.applyEvents(resp.Events); n > 0 {
		s.update(func(st *SyncStatus) { st.Duplicates += uint64(n) })
	}
	if s.cfg.Received != nil && len(resp.Events) > 0 {
		s.cfg.Received(s.st.rev)
	}
	return nil
}

// rangeEnd ends the followed range before status/: hosts rewrite their
// status after every change, and no host's snapshot depends on it.
func (s *Syncer) rangeEnd() string { return s.cfg.Layout.Dir(KindStatus) }

// readAll reads the followed range at one revision, page by page.
func (s *Syncer) readAll(ctx context.Context) (*state, error) {
	st := newState(s.cfg.Layout)
	from, end := s.cfg.Layout.Prefix, s.rangeEnd()
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(s.cfg.PageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.get(ctx, from, opts...)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s.cfg.Layout.Prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			st.put(string(kv.Key), kv.Value, kv.ModRevision)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if s.st != nil && rev < s.st.rev {
		s.log.Warn("fleet store is at an older revision than this host has seen", "rev", rev, "seen", s.st.rev)
	}
	st.rev = rev
	return st, nil
}

func (s *Syncer) get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.cfg.Client.Get(ctx, key, opts...)
}

// check compares the copy with a keys-only read of the store at the
// copy's revision: a key missing, extra or at another mod revision means
// an event was lost (etcd 3.4 has lost some), and everything is read
// again.
func (s *Syncer) check(ctx context.Context) error {
	got := map[string]int64{}
	from, end := s.cfg.Layout.Prefix, s.rangeEnd()
	for {
		resp, err := s.get(ctx, from, clientv3.WithRange(end), clientv3.WithKeysOnly(),
			clientv3.WithRev(s.st.rev), clientv3.WithLimit(s.cfg.PageSize))
		if errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrFutureRev) {
			// The copy is older than the store keeps, or newer than
			// the store (which went back): read it afresh.
			return errResync
		}
		if err != nil {
			s.log.Warn("fleet consistency check", "err", err)
			return nil
		}
		for _, kv := range resp.Kvs {
			got[string(kv.Key)] = kv.ModRevision
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	s.touch()
	if !mapsEqual(got, s.st.mods) {
		s.update(func(st *SyncStatus) { st.CheckMismatches++ })
		s.log.Warn("fleet copy differs from the store: reading everything again", "rev", s.st.rev, "keys", len(s.st.mods), "store_keys", len(got))
		return errResync
	}
	return nil
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// probe asks the store for its revision, to know it still answers; a
// store behind the copy (restored from a backup, or a new cluster, which
// a watch would wait on for ever) is read again.
func (s *Syncer) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(s.cfg.ProbeEvery, 5*time.Second))
	defer cancel()
	resp, err := s.cfg.Client.Get(ctx, s.cfg.Layout.Key(KindSerial, ""), clientv3.WithCountOnly())
	if err != nil {
		return nil
	}
	s.touch()
	if resp.Header.Revision < s.st.rev {
		s.log.Warn("fleet store revision went backwards: reading everything again", "rev", s.st.rev, "store_rev", resp.Header.Revision)
		return errResync
	}
	return nil
}

// rebuild builds the copy's snapshot and applies it when it is valid
// and differs from the one in force.
func (s *Syncer) rebuild() {
	snap, err := s.b.build(s.st, s.last.Hash())
	if err == nil && snap == nil {
		// Nothing this host enforces changed: what it enforces is the
		// snapshot of the copy's revision too.
		if s.last != nil && s.Status().Error == "" && s.Status().Revision < s.st.rev {
			s.update(func(st *SyncStatus) { st.Revision = s.st.rev })
			s.report()
		}
		return
	}
	if snap != nil && snap.Table != nil {
		s.update(func(st *SyncStatus) { st.Compiles++ })
	}
	if err == nil && s.last != nil && snap.Hash() == s.last.Hash() {
		snap.Table = s.last.Table // the same meaning at a newer revision, not compiled again
		s.last = snap
		if s.cfg.SnapshotPath != "" {
			if err := snap.Save(s.cfg.SnapshotPath, s.cfg.Now()); err != nil {
				s.log.Error("fleet snapshot not saved", "err", err)
			}
		}
		s.update(func(st *SyncStatus) { st.Revision, st.Error = snap.Revision, "" })
		s.report()
		return
	}
	if err == nil {
		err = s.cfg.Apply(snap)
	}
	if err != nil {
		s.log.Error("fleet snapshot refused, keeping the one in force", "rev", s.st.rev, "err", err)
		s.update(func(st *SyncStatus) { st.Refused++; st.Error = err.Error() })
		s.report()
		return
	}
	s.last = snap
	if s.cfg.SnapshotPath != "" {
		if err := snap.Save(s.cfg.SnapshotPath, s.cfg.Now()); err != nil {
			s.log.Error("fleet snapshot not saved: a restart with the store down would not enforce it", "err", err)
		}
	}
	s.update(func(st *SyncStatus) {
		st.Revision, st.Hash, st.Applied, st.Error = snap.Revision, snap.Hash(), s.cfg.Now(), ""
		st.Snapshots++
	})
	s.report()
}

func (s *Syncer) report() {
	if s.cfg.Report == nil {
		return
	}
	st := s.Status()
	s.cfg.Report(StatusValue{Revision: st.Revision, Hash: st.Hash, Applied: st.Applied, Error: st.Error})
}
