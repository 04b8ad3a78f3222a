package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fwd-project/fwd/internal/rules"
)

// Lease TTLs: a dead host's addresses leave its peers' tables within the
// TTL (plus one election), so it is short; shorter than MinTTL only for
// tests (MemberConfig.AllowShortTTL).
const (
	DefaultTTL = 20 * time.Second
	MinTTL     = 15 * time.Second
	MaxTTL     = 30 * time.Second
)

// LeaseFile is the name of the lease ID file in the state directory.
const LeaseFile = "fleet-lease"

// MemberConfig configures a Member.
type MemberConfig struct {
	Client *clientv3.Client
	Layout Layout
	Host   string
	// Addrs are this host's addresses, written to hosts/HOST.
	Addrs []netip.Addr
	TTL   time.Duration
	// AllowShortTTL lets TTL go below MinTTL (tests).
	AllowShortTTL bool
	// LeasePath, when set, keeps the lease ID across restarts, so that
	// a planned restart resumes the lease and the host never leaves its
	// groups.
	LeasePath string
	Retry     time.Duration
	// StatusJitter spreads status writes: each waits a random time up
	// to it (0: none).
	StatusJitter time.Duration
	Log          *slog.Logger
}

// CheckTTL says whether ttl is a lease TTL fwd accepts.
func CheckTTL(ttl time.Duration, allowShort bool) error {
	if ttl > MaxTTL || ttl < time.Second || (!allowShort && ttl < MinTTL) {
		return fmt.Errorf("lease ttl %v: expected %v to %v", ttl, MinTTL, MaxTTL)
	}
	return nil
}

// Member keeps this host's presence in the store: hosts/HOST (its
// addresses) and status/HOST (what it enforces) under its own lease,
// kept alive, and written again when they vanish or the lease is lost.
type Member struct {
	cfg MemberConfig
	log *slog.Logger

	mu     sync.Mutex
	status StatusValue
	lease  clientv3.LeaseID
	writes uint64
	kick   chan struct{}
}

// NewMember returns a Member for cfg; Run starts it.
func NewMember(cfg MemberConfig) (*Member, error) {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if err := CheckTTL(cfg.TTL, cfg.AllowShortTTL); err != nil {
		return nil, err
	}
	if err := CheckName(cfg.Host); err != nil {
		return nil, fmt.Errorf("host name: %w", err)
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Member{cfg: cfg, log: cfg.Log, kick: make(chan struct{}, 1)}, nil
}

// SetStatus records what this host enforces and writes it soon.
func (m *Member) SetStatus(v StatusValue) {
	m.mu.Lock()
	m.status = v
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Lease is the lease in use (0 before the first).
func (m *Member) Lease() clientv3.LeaseID {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lease
}

// Writes counts the writes of this host's keys (the first included).
func (m *Member) Writes() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

// Run keeps the keys until ctx ends. It does not revoke the lease at
// the end: a planned restart resumes it, and a host that stays down
// leaves its groups when the lease expires.
func (m *Member) Run(ctx context.Context) error {
	for {
		err := m.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		m.log.Warn("fleet membership", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(m.cfg.Retry):
		}
	}
}

func (m *Member) session(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	id, err := m.obtainLease(sctx)
	if err != nil {
		return err
	}
	ka, err := m.cfg.Client.KeepAlive(sctx, id)
	if err != nil {
		return fmt.Errorf("keep lease %x alive: %w", id, err)
	}
	rev, err := m.writeKeys(sctx, id)
	if err != nil {
		return err
	}
	hostKey := m.cfg.Layout.Key(KindHost, m.cfg.Host)
	statusKey := m.cfg.Layout.Key(KindStatus, m.cfg.Host)
	hw := m.cfg.Client.Watch(sctx, hostKey, clientv3.WithRev(rev+1))
	sw := m.cfg.Client.Watch(sctx, statusKey, clientv3.WithRev(rev+1))
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ka:
			if !ok {
				return fmt.Errorf("lease %x lost", id)
			}
		case resp, ok := <-hw:
			if !ok || resp.Err() != nil {
				return fmt.Errorf("watch %s: %v", hostKey, resp.Err())
			}
			if deleted(resp) {
				m.log.Warn("this host's key vanished from the store: writing it again", "key", hostKey)
				if _, err := m.writeKeys(sctx, id); err != nil {
					return err
				}
			}
		case resp, ok := <-sw:
			if !ok || resp.Err() != nil {
				return fmt.Errorf("watch %s: %v", statusKey, resp.Err())
			}
			if deleted(resp) {
				if err := m.writeStatus(sctx, id); err != nil {
					return err
				}
			}
		case <-m.kick:
			// A random pause first: after an edit every host reports at
			// once, and the store need not take them all at once.
			if d := m.cfg.StatusJitter; d > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(rand.N(d)):
				}
			}
			if err := m.writeStatus(sctx, id); err != nil {
				return err
			}
		}
	}
}

func deleted(resp clientv3.WatchResponse) bool {
	for _, ev := range resp.Events {
		if ev.Type == mvccpb.DELETE {
			return true
		}
	}
	return false
}

// obtainLease resumes the lease kept on disk while the store still
// holds it, or grants a new one and keeps its ID.
func (m *Member) obtainLease(ctx context.Context) (clientv3.LeaseID, error) {
	if id, ok := m.savedLease(); ok {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ttl, err := m.cfg.Client.TimeToLive(tctx, id)
		cancel()
		if err == nil && ttl.TTL > 0 {
			m.log.Info("fleet lease resumed", "lease", fmt.Sprintf("%x", int64(id)), "ttl_left", ttl.TTL)
			m.setLease(id)
			return id, nil
		}
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	g, err := m.cfg.Client.Grant(tctx, int64(m.cfg.TTL/time.Second))
	if err != nil {
		return 0, fmt.Errorf("grant a lease: %w", err)
	}
	m.setLease(g.ID)
	if m.cfg.LeasePath != "" {
		if err := rules.WriteFileAtomic(m.cfg.LeasePath, []byte(strconv.FormatInt(int64(g.ID), 10)+"\n")); err != nil {
			m.log.Warn("fleet lease not kept on disk: a restart will take a new one", "err", err)
		}
	}
	return g.ID, nil
}

func (m *Member) savedLease() (clientv3.LeaseID, bool) {
	if m.cfg.LeasePath == "" {
		return 0, false
	}
	data, err := os.ReadFile(m.cfg.LeasePath)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return clientv3.LeaseID(n), true
}

func (m *Member) setLease(id clientv3.LeaseID) {
	m.mu.Lock()
	m.lease = id
	m.mu.Unlock()
}

// writeKeys writes hosts/HOST and status/HOST under lease id in one
// transaction and returns its revision.
func (m *Member) writeKeys(ctx context.Context, id clientv3.LeaseID) (int64, error) {
	hv, err := json.Marshal(HostValue{Addrs: m.cfg.Addrs})
	if err != nil {
		return 0, err
	}
	sv, err := m.statusValue()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := m.cfg.Client.Txn(ctx).Then(
		clientv3.OpPut(m.cfg.Layout.Key(KindHost, m.cfg.Host), string(hv), clientv3.WithLease(id)),
		clientv3.OpPut(m.cfg.Layout.Key(KindStatus, m.cfg.Host), string(sv), clientv3.WithLease(id)),
	).Commit()
	if err != nil {
		return 0, fmt.Errorf("write this host's keys: %w", err)
	}
	m.countWrite()
	return resp.Header.Revision, nil
}

func (m *Member) writeStatus(ctx context.Context, id clientv3.LeaseID) error {
	sv, err := m.statusValue()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := m.cfg.Client.Put(ctx, m.cfg.Layout.Key(KindStatus, m.cfg.Host), string(sv), clientv3.WithLease(id)); err != nil {
		return fmt.Errorf("write this host's status: %w", err)
	}
	m.countWrite()
	return nil
}

func (m *Member) statusValue() ([]byte, error) {
	m.mu.Lock()
	v := m.status
	m.mu.Unlock()
	return json.Marshal(v)
}

func (m *Member) countWrite() {
	m.mu.Lock()
	m.writes++
	m.mu.Unlock()
}
