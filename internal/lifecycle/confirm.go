package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
)

// Confirmed changes ("commit confirmed"): a change made with
// Change.Confirm goes live at once, and unless Confirm is called within
// that time, the Service puts the previous rules back (the file's bytes
// and the table) by itself, through the same path, and logs it. The
// timer lives in the daemon, so it runs whatever happens to the fwctl
// that asked.
//
// While a change waits for confirmation, every other change is refused
// (CodeConfirmPending): one change is pending at a time, and what a
// rollback restores is always what was live before it. Dry runs and
// status are answered.
//
// The previous rules and the deadline are also written beside the rules
// file (RollbackPath) before the change goes live, so that a restart
// within the window resumes the timer, and a restart after the deadline
// rolls back before loading (Resume): a crash never makes an unconfirmed
// change permanent.

// MaxConfirm bounds a confirmation window.
const MaxConfirm = 24 * time.Hour

// RollbackPath is where the previous rules of a pending confirmed
// change are kept: beside the rules file, named after it.
func RollbackPath(rulesPath string) string { return rulesPath + ".rollback" }

// Pending is a confirmed change waiting for confirmation.
type Pending struct {
	Deadline     time.Time `json:"deadline"`
	Hash         string    `json:"hash"`          // of the unconfirmed rules
	PreviousHash string    `json:"previous_hash"` // of the rules a rollback restores
	By           *Peer     `json:"by,omitempty"`  // who made the change
}

// rollbackRecord is the file at RollbackPath.
type rollbackRecord struct {
	Pending
	Previous string `json:"previous"` // the previous rules file, as it was
}

type pendingChange struct {
	Pending
	prev []byte
	seq  int
	stop func() bool
}

// ConfirmResult is the result of Confirm.
type ConfirmResult struct {
	Hash    string `json:"hash"`
	Message string `json:"message"`
}

// checkPending refuses a change while a confirmed one is pending. A
// rollback, the first load and a recompile of the live rules (an ACL
// expiry: the same bytes) pass. The caller holds s.mu.
func (s *Service) checkPending(ctx context.Context, f *rules.File) *Error {
	p := s.safety.pending
	if p == nil {
		return nil
	}
	if c := changeOf(ctx); c != nil && c.rollback {
		return nil
	}
	live := s.cfg.Target.Table()
	if live == nil || liveHash(live) == f.Hash {
		return nil
	}
	return &Error{Code: CodeConfirmPending, Message: fmt.Sprintf(
		"a confirmed change is pending until %s (sha256 %s): fwctl confirm, or wait for the rollback; nothing changed",
		p.Deadline.Format(time.RFC3339), short(p.Hash))}
}

// beginConfirm runs before a change with a confirmation goes live: it
// writes the rollback record (the live rules' bytes and the deadline).
// It returns the pending change to start once the table is live, nil
// when the change asks for no confirmation. The caller holds s.mu.
func (s *Service) beginConfirm(ctx context.Context, f *rules.File) (*pendingChange, *Error) {
	c := changeOf(ctx)
	if c == nil || c.rollback || c.Confirm <= 0 {
		return nil, nil
	}
	if c.Confirm > MaxConfirm {
		return nil, badRequest(fmt.Sprintf("bad confirm %s: at most %s", c.Confirm, MaxConfirm))
	}
	if s.cfg.ReadOnly != "" {
		return nil, &Error{Code: CodeReadOnly, Message: s.cfg.ReadOnly}
	}
	prev := s.safety.liveData
	if prev == nil {
		return nil, &Error{Code: CodeApplyFailed, Message: "the running rules' file contents are not known (the file changed while they were loaded), so they could not be restored: reload, then make the change again; nothing changed"}
	}
	p := &pendingChange{Pending: Pending{Deadline: s.now().Add(c.Confirm), Hash: f.Hash, PreviousHash: rules.Hash(prev), By: c.Peer}, prev: prev}
	rec, err := json.MarshalIndent(rollbackRecord{Pending: p.Pending, Previous: string(prev)}, "", "  ")
	if err == nil {
		err = rules.WriteFileAtomic(RollbackPath(s.cfg.Path), append(rec, '\n'))
	}
	if err != nil {
		return nil, &Error{Code: CodeWriteFailed, Message: fmt.Sprintf("keep the previous rules for the rollback: %v: nothing changed", err)}
	}
	return p, nil
}

// abortConfirm removes the rollback record of a change that did not go
// live.
func (s *Service) abortConfirm(p *pendingChange) {
	if p == nil {
		return
	}
	if err := os.Remove(RollbackPath(s.cfg.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove the rollback record of a change that did not happen", "err", err)
	}
}

// pend makes p the pending change, arms its timer and publishes it to
// status; it returns what status shows. The caller holds s.mu.
func (s *Service) pend(p *pendingChange) *Pending {
	s.safety.seq++
	p.seq = s.safety.seq
	s.safety.pending = p
	s.arm(p, p.Deadline.Sub(s.now()))
	info := p.Pending
	s.safety.mu.Lock()
	s.safety.pendingInfo = &info
	s.safety.mu.Unlock()
	return &info
}

// startConfirm makes p the pending change and starts its timer, once
// its table is live. The caller holds s.mu.
func (s *Service) startConfirm(ctx context.Context, p *pendingChange) {
	if p == nil {
		return
	}
	info := s.pend(p)
	if c := changeOf(ctx); c != nil {
		c.pending = info
		c.confirmNote = fmt.Sprintf("confirm with fwctl confirm by %s (within %s), or fwd rolls back to the previous rules (sha256 %s)",
			p.Deadline.Format(time.RFC3339), c.Confirm, short(p.PreviousHash))
	}
	s.log.Warn("confirmed change pending", "rules", s.cfg.Path, "hash", short(p.Hash), "deadline", p.Deadline.Format(time.RFC3339), "rollback_to", short(p.PreviousHash))
}

func (s *Service) arm(p *pendingChange, d time.Duration) {
	after := s.cfg.Safety.AfterFunc
	if after == nil {
		after = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	seq := p.seq
	p.stop = after(max(d, 0), func() { s.rollbackDue(seq) })
}

// rollbackDue is the timer of pending change seq.
func (s *Service) rollbackDue(seq int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.safety.pending
	if p == nil || p.seq != seq {
		return // confirmed, or rolled back already
	}
	if now := s.now(); now.Before(p.Deadline) {
		s.arm(p, p.Deadline.Sub(now))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if e := s.rollback(ctx, p, "the change was not confirmed in time"); e != nil {
		s.log.Error("ROLLBACK FAILED: the unconfirmed change stays live; trying again in 10s", "rules", s.cfg.Path, "err", e.Message)
		s.arm(p, 10*time.Second)
	}
}

// rollback puts p's previous rules back, file and table; why goes to
// the log. The caller holds s.mu.
func (s *Service) rollback(ctx context.Context, p *pendingChange, why string) *Error {
	f, err := rules.Parse(s.cfg.Path, p.prev, s.cfg.Rules)
	if err != nil {
		return rulesError(s.cfg.Path, "previous rules cannot be restored", err)
	}
	ctx = WithChange(ctx, &Change{rollback: true})
	if _, e := s.apply(ctx, f, func() error { return rules.WriteFileAtomic(s.cfg.Path, p.prev) }); e != nil {
		return e
	}
	s.endPending()
	s.countSafety(&s.safety.rolled)
	s.log.Warn("ROLLED BACK: "+why, "rules", s.cfg.Path,
		"unconfirmed", short(p.Hash), "restored", short(p.PreviousHash), "deadline", p.Deadline.Format(time.RFC3339))
	return nil
}

// endPending forgets the pending change and its record. The caller
// holds s.mu.
func (s *Service) endPending() {
	if p := s.safety.pending; p != nil && p.stop != nil {
		p.stop()
	}
	s.safety.pending = nil
	s.safety.mu.Lock()
	s.safety.pendingInfo = nil
	s.safety.mu.Unlock()
	if err := os.Remove(RollbackPath(s.cfg.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove the rollback record", "err", err)
	}
}

// Confirm keeps the pending confirmed change: its timer stops and its
// rollback record goes. Without one it answers CodeNotFound.
func (s *Service) Confirm(ctx context.Context) (ConfirmResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.safety.pending
	if p == nil {
		return ConfirmResult{}, &Error{Code: CodeNotFound, Message: "no change is waiting for confirmation"}
	}
	// The record first: a record left on disk would roll the change
	// back at the next start.
	if err := os.Remove(RollbackPath(s.cfg.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ConfirmResult{}, &Error{Code: CodeWriteFailed, Message: fmt.Sprintf("remove the rollback record: %v: not confirmed, the rollback stays due", err)}
	}
	s.endPending()
	s.countSafety(&s.safety.confirmd)
	left := p.Deadline.Sub(s.now()).Round(time.Second)
	s.log.Info("change confirmed", "rules", s.cfg.Path, "hash", short(p.Hash), "left", left.String())
	return ConfirmResult{Hash: p.Hash, Message: fmt.Sprintf("change confirmed (sha256 %s), %s before the rollback", short(p.Hash), left)}, nil
}

// RollbackPending rolls the pending confirmed change back now, as its
// deadline would: the rules live before it return, file and table.
// Without one it answers CodeNotFound.
func (s *Service) RollbackPending(ctx context.Context, dryRun bool) (EditResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.safety.pending
	if p == nil {
		return EditResult{DryRun: dryRun}, &Error{Code: CodeNotFound, Message: "no change is waiting for confirmation: fwctl rollback N restores history entry N (fwctl history lists them)"}
	}
	cur, err := rules.ReadFile(s.cfg.Path, s.cfg.Rules.MaxFileBytes)
	if err != nil {
		cur = nil
	}
	res := EditResult{DryRun: dryRun, Changed: true, Hash: p.PreviousHash, Diff: unifiedDiff(s.cfg.Path, cur, p.prev)}
	if dryRun {
		return res, nil
	}
	if e := s.rollback(ctx, p, "asked before the deadline"); e != nil {
		return EditResult{}, s.fail(e)
	}
	return res, nil
}

// noteLive records the bytes of the rules now live, which a confirmed
// change would roll back to: read back from the file and kept only
// when they are the bytes the live table was compiled from. The caller
// holds s.mu.
func (s *Service) noteLive(hash string) {
	data, err := rules.ReadFile(s.cfg.Path, s.cfg.Rules.MaxFileBytes)
	switch {
	case err == nil && rules.Hash(data) == hash:
		s.safety.liveData = data
	case s.safety.liveData != nil && rules.Hash(s.safety.liveData) == hash:
		// The same rules again (a recompile), the file changed since.
	default:
		s.safety.liveData = nil
	}
}

// Resume handles, before the first load, a confirmed change that was
// pending when fwd stopped (its record beside the rules file): past
// its deadline, the previous rules are written back (the first load
// then loads them); within it, the timer starts again for the time
// left. A record for other rules than the file's (edited by hand
// since) is stale and removed. Call it once, before the first Reload.
func (s *Service) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := RollbackPath(s.cfg.Path)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rollback record: %w", err)
	}
	var rec rollbackRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.Deadline.IsZero() || rec.Hash == "" {
		return fmt.Errorf("rollback record %s is unreadable (%v): remove it, or restore the rules it holds, before starting fwd", path, err)
	}
	cur, err := rules.ReadFile(s.cfg.Path, s.cfg.Rules.MaxFileBytes)
	if err != nil {
		return fmt.Errorf("rollback record: %w", err)
	}
	prev := []byte(rec.Previous)
	switch {
	case rules.Hash(cur) != rec.Hash:
		s.log.Warn("rollback record is stale: the rules file is not the unconfirmed change it was made for; removed", "record", path, "unconfirmed", short(rec.Hash), "file", short(rules.Hash(cur)))
		return removeRecord(path)
	case !s.now().Before(rec.Deadline):
		if err := rules.WriteFileAtomic(s.cfg.Path, prev); err != nil {
			return fmt.Errorf("roll back the unconfirmed change: %w", err)
		}
		s.countSafety(&s.safety.rolled)
		s.log.Warn("ROLLED BACK at start: the change was not confirmed before its deadline", "rules", s.cfg.Path,
			"unconfirmed", short(rec.Hash), "restored", short(rules.Hash(prev)), "deadline", rec.Deadline.Format(time.RFC3339))
		return removeRecord(path)
	}
	p := &pendingChange{Pending: rec.Pending, prev: prev}
	s.pend(p)
	s.log.Warn("confirmed change still pending after a restart", "rules", s.cfg.Path, "hash", short(p.Hash), "deadline", p.Deadline.Format(time.RFC3339))
	return nil
}

func removeRecord(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove rollback record: %w", err)
	}
	return nil
}

// Apply replaces the rules file with data (fwctl apply FILE) through
// the one path: data is decoded strictly and compiled, the file
// replaced atomically and the table swapped, or nothing changes. The
// current file may be invalid (apply is how it is fixed). With dryRun
// the result holds the diff and nothing changes.
func (s *Service) Apply(ctx context.Context, data []byte, dryRun bool) (EditResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := EditResult{DryRun: dryRun}
	if s.cfg.ReadOnly != "" && !dryRun {
		return res, &Error{Code: CodeReadOnly, Message: s.cfg.ReadOnly}
	}
	f, err := rules.Parse(s.cfg.Path, data, s.cfg.Rules)
	if err != nil {
		return res, rulesError(s.cfg.Path, "given to apply has errors, nothing changed", err)
	}
	old, err := rules.ReadFile(s.cfg.Path, s.cfg.Rules.MaxFileBytes)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, s.fail(readError(s.cfg.Path, err))
	}
	res.Hash = f.Hash
	live := s.cfg.Target.Table()
	if bytes.Equal(old, data) && liveHash(live) == f.Hash {
		res.Notes = append(res.Notes, fmt.Sprintf("%s has these bytes and they are live: nothing to do", s.cfg.Path))
		return res, nil
	}
	res.Changed = true
	res.Diff = unifiedDiff(s.cfg.Path, old, data)
	if dryRun {
		return res, nil
	}
	if _, e := s.apply(ctx, f, func() error { return rules.WriteFileAtomic(s.cfg.Path, data) }); e != nil {
		return res, e
	}
	s.count(&s.stats.OK)
	s.log.Info("rules applied", "rules", s.cfg.Path, "hash", short(f.Hash))
	res.Notes = append(res.Notes, Warnings(f)...)
	s.finishEdit(ctx, &res)
	return res, nil
}

// finishEdit adds the notes of the guard and the confirmation to an
// edit's result.
func (s *Service) finishEdit(ctx context.Context, res *EditResult) {
	notes, p := changeNotes(ctx)
	res.Notes = append(res.Notes, notes...)
	if c := changeOf(ctx); c != nil && c.confirmNote != "" {
		res.Notes = append(res.Notes, c.confirmNote)
	}
	res.Confirm = p
}

// finishReload adds them to a reload's result.
func (s *Service) finishReload(ctx context.Context, res *ReloadResult) {
	notes, p := changeNotes(ctx)
	res.Warnings = append(res.Warnings, notes...)
	res.Confirm = p
}

// MaxFileBytes is the largest rules file the Service reads, and so the
// largest Apply takes.
func (s *Service) MaxFileBytes() int64 {
	if s.cfg.Rules.MaxFileBytes <= 0 {
		return rules.DefaultMaxFileBytes
	}
	return s.cfg.Rules.MaxFileBytes
}
