package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// Reload reads the rules file and, when it is valid and differs from the
// live rules, swaps its table in. On any error (an *Error) the live table
// stays; an invalid file's error lists every problem in Details. An
// unchanged file is a no-op that says so. The daemon's first load,
// SIGHUP and fwctl reload call it.
//
// A failure is logged while a table is live (the daemon keeps running on
// it); before the first table the caller reports it, since it cannot
// run.
func (s *Service) Reload(ctx context.Context) (ReloadResult, error) {
	if s.cfg.NoReload != "" {
		return ReloadResult{}, &Error{Code: CodeReadOnly, Message: s.cfg.NoReload}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.cfg.Target.Table()
	start := time.Now()
	res, e := s.reload(ctx, live)
	s.observe(start, live == nil, res, e)
	if e != nil || res.Changed {
		s.record(ctx, reloadAction(live), liveHash(live), e)
	}
	if e != nil {
		if live != nil {
			if len(e.Details) > 0 {
				s.log.Error("reload failed, keeping the running rules", "rules", s.cfg.Path, "errors", strings.Join(e.Details, "; "))
			} else {
				s.log.Error("reload failed, keeping the running rules", "rules", s.cfg.Path, "err", e.Message)
			}
		}
		return ReloadResult{}, e
	}
	return res, nil
}

// reload is Reload with s.mu held; live is the live table.
func (s *Service) reload(ctx context.Context, live *filter.Table) (ReloadResult, *Error) {
	data, err := rules.ReadFile(s.cfg.Path, s.cfg.Rules.MaxFileBytes)
	if err != nil {
		return ReloadResult{}, s.fail(readError(s.cfg.Path, err))
	}
	f, err := rules.Parse(s.cfg.Path, data, s.cfg.Rules)
	if err != nil {
		return ReloadResult{}, s.fail(rulesError(s.cfg.Path, "has errors, keeping the running rules", err))
	}
	// The same bytes decode to the same rules: the hash of the bytes
	// just read (which Parse computed) says whether anything changed.
	hash := f.Hash
	// Unchanged bytes are a no-op, unless an ACL entry of the live
	// table has expired since it was compiled (then the table is
	// compiled again, as Recompile does).
	if live != nil && liveHash(live) == hash && !expiryDue(live, s.now()) {
		s.count(&s.stats.Unchanged)
		s.log.Info("reload: rules unchanged", "rules", s.cfg.Path, "hash", short(hash))
		lf := live.File()
		return ReloadResult{Hash: hash, Groups: len(lf.Groups), Rules: lf.NumRules(),
			Message: fmt.Sprintf("rules unchanged (sha256 %s): nothing to do", short(hash))}, nil
	}
	t, e := s.apply(ctx, f, nil)
	if e != nil {
		return ReloadResult{}, e
	}
	if live != nil { // the first load is not a reload: Stats count changes of running rules
		s.count(&s.stats.OK)
	}
	s.log.Info("reloaded", "rules", s.cfg.Path, "hash", short(hash), "rules_count", t.File().NumRules())
	warns := Warnings(f)
	for _, w := range warns {
		s.log.Warn("rules file", "warning", w)
	}
	res := ReloadResult{Changed: true, Hash: hash, Groups: len(f.Groups), Rules: f.NumRules(),
		Message:  fmt.Sprintf("reloaded %s: %d groups, %d rules (sha256 %s)", s.cfg.Path, len(f.Groups), f.NumRules(), short(hash)),
		Warnings: warns}
	s.finishReload(ctx, &res)
	return res, nil
}

// expiryDue reports whether an ACL entry that t matches has expired at
// now, so that t must be compiled again.
func expiryDue(t *filter.Table, now time.Time) bool {
	next := t.NextExpiry()
	return !next.IsZero() && !now.Before(next)
}

// Recompile compiles the live rules again at the current time and swaps
// the new table in, when an ACL entry of the live table has expired
// since it was compiled (its NextExpiry has come): the new table leaves
// that entry out. It reads no file (the rules file may have changes
// not loaded yet, which only a reload loads), writes none, and is a
// no-op, returning false, when nothing has expired. The daemon calls it
// at the live table's NextExpiry.
func (s *Service) Recompile(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.cfg.Target.Table()
	if live == nil || live.File() == nil || !expiryDue(live, s.now()) {
		return false, nil
	}
	f := live.File()
	now := s.now()
	var gone []string
	for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
		for _, e := range f.ACL.List(d) {
			if e.Expired(now) && !e.Expired(live.CompiledAt()) {
				gone = append(gone, e.Format(d))
			}
		}
	}
	if _, e := s.apply(ctx, f, nil); e != nil {
		s.log.Error("recompile for expired acl entries failed, keeping the running rules", "rules", s.cfg.Path, "err", e.Message)
		return false, e
	}
	s.record(ctx, ActionExpire, liveHash(live), nil)
	s.log.Info("acl entries expired", "rules", s.cfg.Path, "entries", strings.Join(gone, "; "))
	return true, nil
}

// reloadAction is the history's name of a reload: the first load is the
// daemon's start.
func reloadAction(live *filter.Table) string {
	if live == nil {
		return ActionStart
	}
	return ActionReload
}
