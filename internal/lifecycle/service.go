// Package lifecycle is the one path by which fwd's rules change: the
// first load at start, reloads (SIGHUP, fwctl reload) and runtime edits
// (fwctl allow, delete) all go through a Service, one at a time. It
// reads the rules file, decodes it strictly, compiles it and only then
// swaps the table in; on any error the live table stays and the error
// (an *Error with a stable Code) lists every file:line:column problem.
// Edits change the file's text (comments and order kept), validate and
// compile the result, replace the file atomically and swap the table in
// the same step.
//
// Compile is the same read-validate-compile for the offline commands
// and benchmarks, which need a table but no daemon.
//
// The package knows nothing of HTTP: internal/control serves a Service
// on the control socket and maps its error codes to reply statuses.
package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// Target is where the Service publishes tables: the daemon's engine,
// which holds the live table in an atomic pointer.
type Target interface {
	// Table returns the live table, nil before the first.
	Table() *filter.Table
	// Swap publishes t as the live table in one store.
	Swap(t *filter.Table)
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Path is the rules file.
	Path string
	// Rules are the decoding options.
	Rules rules.Options
	// Target receives the tables.
	Target Target
	// ReadOnly, when set, refuses runtime edits with this reason (the
	// daemon sets it when it runs on the rules shipped with fwd, which an
	// edit must not rewrite). Reloads still work.
	ReadOnly string
	// NoReload, when set, refuses reloads with this reason (fleet mode,
	// where the rules come from the store through Install).
	NoReload string
	// Group is where edits go; "" means DefaultGroup.
	Group string
	// Prepare, when set, is called with a new table before anything is
	// committed (before the file is written and the table swapped); an
	// error aborts the change. The daemon uses it to add the kernel hooks
	// the new table needs (egress queueing); it must leave the host fit
	// for both tables, since the old one stays live when a later step
	// fails.
	Prepare func(ctx context.Context, next *filter.Table) error
	// Settle, when set, is called after a swap with the new live table,
	// to remove what only the old table needed. Its error is logged.
	Settle func(ctx context.Context, live *filter.Table) error
	// Observe, when set, is called after every reload (the first load
	// included, edits not), with how long it took and how it ended.
	Observe func(ReloadEvent)
	// Changing, when set, is called as a change of the live rules begins
	// (a reload of a changed file, an edit that is not a dry run) and
	// returns what to call when it ends, with the live table then (the
	// new one, or the old one when the change failed). Every change
	// passes here, whatever asked for it: the daemon tells systemd
	// RELOADING=1 and READY=1 around it.
	Changing func() (done func(live *filter.Table))
	// Revoke, when set, is called after an added deny entry went live,
	// to cut the established connections it matches (their conntrack
	// entries); it returns how many it cut. Its error is a note of the
	// edit, which stays done.
	Revoke func(ctx context.Context, dir direction.Dir, e rules.ACLEntry) (int, error)
	// CutFlows, when set, is called by a change asked to revoke
	// (DeleteRequest.Revoke, ReloadOptions.Revoke) once the new table
	// is live, with that table: it cuts the established connections
	// the table no longer allows (their conntrack entries) and returns
	// how many. Without it such a change is refused.
	CutFlows func(ctx context.Context, live *filter.Table) (int, error)
	// Now, when set, is the clock: the time --expire counts from and
	// the time tables are compiled at (ACL expiries). Tests fix it.
	Now func() time.Time
	// Log receives one line per change, per warning of a reloaded file
	// and per failed reload while a table is live.
	Log *slog.Logger
	// History, when set, journals every change of the live rules and
	// every failed one (see history.go).
	History *History
	// Safety configures the lockout guard, the failsafe and confirmed
	// changes (guard.go, confirm.go).
	Safety Safety
}

// Service serializes every change of the live rules: reloads of the
// rules file and runtime edits. Its methods are safe for concurrent use;
// changes happen one at a time, each on the file as the one before left
// it, so concurrent edits never lose one another.
type Service struct {
	cfg ServiceConfig
	log *slog.Logger

	mu sync.Mutex // serializes changes

	statsMu sync.Mutex // guards stats, so that status never waits for a change
	stats   ReloadStats

	safety safetyState // the lockout guard and confirmed changes
}

// NewService returns a Service for cfg.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: cfg.Log}
}

// Path is the rules file the Service reloads and edits.
func (s *Service) Path() string { return s.cfg.Path }

// Stats returns the reload counters.
func (s *Service) Stats() ReloadStats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats
}

func (s *Service) count(c *uint64) {
	s.statsMu.Lock()
	*c++
	s.statsMu.Unlock()
}

// Table returns the live table.
func (s *Service) Table() *filter.Table { return s.cfg.Target.Table() }

func liveHash(t *filter.Table) string {
	if t == nil || t.File() == nil {
		return ""
	}
	return t.File().Hash
}

func (s *Service) fail(err *Error) *Error {
	s.statsMu.Lock()
	s.stats.Failed++
	s.stats.LastError = err
	s.statsMu.Unlock()
	return err
}

// apply compiles f, prepares the host for it, runs commit (the file
// write of an edit; nil for a reload) and swaps the table in. The caller
// holds s.mu.
func (s *Service) apply(ctx context.Context, f *rules.File, commit func() error) (*filter.Table, *Error) {
	if e := s.checkPending(ctx, f); e != nil {
		return nil, e
	}
	if s.cfg.Changing != nil {
		done := s.cfg.Changing()
		defer func() { done(s.cfg.Target.Table()) }()
	}
	t, err := compile(s.cfg.Path, f, s.now())
	if err != nil {
		return nil, s.fail(&Error{Code: CodeApplyFailed, Message: fmt.Sprintf("%v: nothing changed", err)})
	}
	t, e := s.guard(ctx, t)
	if e != nil {
		return nil, e
	}
	pc, e := s.beginConfirm(ctx, f)
	if e != nil {
		return nil, e
	}
	if s.cfg.Prepare != nil {
		if err := s.cfg.Prepare(ctx, t); err != nil {
			s.abortConfirm(pc)
			return nil, s.fail(&Error{Code: CodeApplyFailed, Message: fmt.Sprintf("prepare the kernel for the new rules: %v: nothing changed", err)})
		}
	}
	if commit != nil {
		if err := commit(); err != nil {
			s.abortConfirm(pc)
			return nil, s.fail(&Error{Code: CodeWriteFailed, Message: fmt.Sprintf("%v: nothing changed", err)})
		}
	}
	s.cfg.Target.Swap(t)
	s.noteLive(f.Hash)
	s.startConfirm(ctx, pc)
	if s.cfg.Settle != nil {
		if err := s.cfg.Settle(ctx, t); err != nil {
			s.log.Warn("after swapping the rules in", "err", err)
		}
	}
	return t, nil
}

// now is the Service's clock.
func (s *Service) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
