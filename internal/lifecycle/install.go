package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
)

// Install puts f in force: a decoded, validated rules file that does not
// come from the Service's rules file (fleet mode's snapshots, resolved
// from the store). It takes the path of a reload after the file is read:
// compile, the lockout guard, Prepare, swap, Settle, the Observe hook;
// on any error the live table stays. f.Hash names what f means: a file
// with the live table's hash is a no-op. source names f in the log.
func (s *Service) Install(ctx context.Context, f *rules.File, source string) (ReloadResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.cfg.Target.Table()
	start := time.Now()
	res, e := s.install(ctx, f, source)
	s.observe(start, live == nil, res, e)
	if e != nil {
		if live != nil {
			s.log.Error("install failed, keeping the running rules", "source", source, "err", e.Message)
		}
		return ReloadResult{}, e
	}
	return res, nil
}

func (s *Service) install(ctx context.Context, f *rules.File, source string) (ReloadResult, *Error) {
	live := s.cfg.Target.Table()
	if live != nil && liveHash(live) == f.Hash {
		s.count(&s.stats.Unchanged)
		return ReloadResult{Hash: f.Hash, Groups: len(f.Groups), Rules: f.NumRules(),
			Message: fmt.Sprintf("%s unchanged (%s): nothing to do", source, short(f.Hash))}, nil
	}
	t, e := s.apply(ctx, f, nil)
	if e != nil {
		return ReloadResult{}, e
	}
	if live != nil {
		s.count(&s.stats.OK)
	}
	s.log.Info("installed", "source", source, "hash", short(f.Hash), "rules_count", t.File().NumRules())
	return ReloadResult{Changed: true, Hash: f.Hash, Groups: len(f.Groups), Rules: f.NumRules(),
		Message: fmt.Sprintf("installed %s: %d groups, %d rules (%s)", source, len(f.Groups), f.NumRules(), short(f.Hash))}, nil
}
