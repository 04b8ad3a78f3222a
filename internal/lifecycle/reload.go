package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
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
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.cfg.Target.Table()
	start := time.Now()
	res, e := s.reload(ctx, live)
	s.observe(start, live == nil, res, e)
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
	if live != nil && liveHash(live) == hash {
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
	return ReloadResult{Changed: true, Hash: hash, Groups: len(f.Groups), Rules: f.NumRules(),
		Message:  fmt.Sprintf("reloaded %s: %d groups, %d rules (sha256 %s)", s.cfg.Path, len(f.Groups), f.NumRules(), short(hash)),
		Warnings: warns}, nil
}
