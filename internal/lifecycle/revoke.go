package lifecycle

import (
	"context"
	"fmt"
)

// This file holds revoke: a change that also cuts the established
// connections the new rules no longer allow. By default a removed rule
// keeps them (AWS's "tracked" connections); a delete or reload asked to
// revoke calls ServiceConfig.CutFlows with the live table once it is
// live, which deletes their conntrack entries (the daemon's connmark
// goes with them), so that their next packet is judged as a new
// connection's.

// ReloadOptions are the options of ReloadWith.
type ReloadOptions struct {
	// Revoke cuts, after the reload, the established connections the
	// live rules do not allow. An unchanged file revokes too: the rules
	// may have been loaded (SIGHUP) without it.
	Revoke bool
}

// ReloadWith is Reload with options.
func (s *Service) ReloadWith(ctx context.Context, o ReloadOptions) (ReloadResult, error) {
	if o.Revoke && s.cfg.CutFlows == nil {
		return ReloadResult{}, badRequest("revoke: this fwd cannot cut connections")
	}
	res, err := s.Reload(ctx)
	if err != nil || !o.Revoke {
		return res, err
	}
	n, cerr := s.cut(ctx)
	if cerr != nil {
		res.Warnings = append(res.Warnings, cerr.Error())
		return res, nil
	}
	res.Cut = &n
	return res, nil
}

// revokeAfterDelete cuts, after a delete asked to revoke went live, the
// connections the new rules no longer allow. A failure to cut is a note:
// the delete stays done.
func (s *Service) revokeAfterDelete(ctx context.Context, revoke, dryRun bool, res EditResult, err error) (EditResult, error) {
	if err != nil || !revoke || dryRun {
		return res, err
	}
	n, cerr := s.cut(ctx)
	if cerr != nil {
		res.Notes = append(res.Notes, cerr.Error())
		return res, nil
	}
	res.Cut = &n
	return res, nil
}

// cut calls CutFlows with the live table, one change at a time.
func (s *Service) cut(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.cfg.Target.Table()
	if live == nil {
		return 0, nil
	}
	n, err := s.cfg.CutFlows(ctx, live)
	if err != nil {
		s.log.Error("revoke: cutting established connections failed", "err", err, "cut", n)
		return n, fmt.Errorf("revoke: %w: established connections the rules no longer allow may go on", err)
	}
	s.log.Info("revoke: cut established connections the rules no longer allow", "cut", n)
	return n, nil
}
