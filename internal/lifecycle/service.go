package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
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
	// Log receives one line per change and per failure.
	Log *slog.Logger
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

// Reload reads the rules file and, when it is valid and differs from the
// live rules, swaps its table in. On any error (a *Error) the live table
// stays; an invalid file's error lists every problem in Details. An
// unchanged file is a no-op that says so. SIGHUP and POST /v1/reload call
// it.
func (s *Service) Reload(ctx context.Context) (ReloadResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.cfg.Path)
	if err != nil {
		e := s.fail(readError(s.cfg.Path, err))
		s.log.Error("reload failed, keeping the running rules", "rules", s.cfg.Path, "err", e.Message)
		return ReloadResult{}, e
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if live := s.cfg.Target.Table(); live != nil && liveHash(live) == hash {
		s.count(&s.stats.Unchanged)
		s.log.Info("reload: rules unchanged", "rules", s.cfg.Path, "hash", short(hash))
		f := live.File()
		return ReloadResult{Hash: hash, Groups: len(f.Groups), Rules: f.NumRules(),
			Message: fmt.Sprintf("rules unchanged (sha256 %s): nothing to do", short(hash))}, nil
	}
	f, err := rules.Parse(s.cfg.Path, data, s.cfg.Rules)
	if err != nil {
		e := s.fail(rulesError(s.cfg.Path, "has errors, keeping the running rules", err))
		s.log.Error("reload failed, keeping the running rules", "rules", s.cfg.Path, "errors", strings.Join(e.Details, "; "))
		return ReloadResult{}, e
	}
	t, e := s.apply(ctx, f, nil)
	if e != nil {
		s.log.Error("reload failed, keeping the running rules", "rules", s.cfg.Path, "err", e.Message)
		return ReloadResult{}, e
	}
	s.count(&s.stats.OK)
	s.log.Info("reloaded", "rules", s.cfg.Path, "hash", short(hash), "rules_count", t.File().NumRules())
	return ReloadResult{Changed: true, Hash: hash, Groups: len(f.Groups), Rules: f.NumRules(),
		Message:  fmt.Sprintf("reloaded %s: %d groups, %d rules (sha256 %s)", s.cfg.Path, len(f.Groups), f.NumRules(), short(hash)),
		Warnings: warnings(f)}, nil
}

// apply compiles f, prepares the host for it, runs commit (the file
// write of an edit; nil for a reload) and swaps the table in. The caller
// holds s.mu.
func (s *Service) apply(ctx context.Context, f *rules.File, commit func() error) (*filter.Table, *Error) {
	t, err := filter.Compile(f)
	if err != nil {
		return nil, s.fail(&Error{Status: http.StatusInternalServerError, Code: CodeApplyFailed, Message: fmt.Sprintf("compile %s: %v: nothing changed", s.cfg.Path, err)})
	}
	if s.cfg.Prepare != nil {
		if err := s.cfg.Prepare(ctx, t); err != nil {
			return nil, s.fail(&Error{Status: http.StatusInternalServerError, Code: CodeApplyFailed, Message: fmt.Sprintf("prepare the kernel for the new rules: %v: nothing changed", err)})
		}
	}
	if commit != nil {
		if err := commit(); err != nil {
			return nil, s.fail(&Error{Status: http.StatusInternalServerError, Code: CodeWriteFailed, Message: fmt.Sprintf("%v: nothing changed", err)})
		}
	}
	s.cfg.Target.Swap(t)
	if s.cfg.Settle != nil {
		if err := s.cfg.Settle(ctx, t); err != nil {
			s.log.Warn("after swapping the rules in", "err", err)
		}
	}
	return t, nil
}

// edit runs one runtime edit: change computes the new file from the
// current one. The caller does not hold s.mu.
func (s *Service) edit(ctx context.Context, dryRun bool, change func(cur *rules.File, data []byte, res *EditResult) ([]byte, *Error)) (EditResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := EditResult{DryRun: dryRun}
	if s.cfg.ReadOnly != "" {
		return res, s.fail(&Error{Status: http.StatusConflict, Code: CodeReadOnly, Message: s.cfg.ReadOnly})
	}
	data, err := os.ReadFile(s.cfg.Path)
	if err != nil {
		return res, s.fail(readError(s.cfg.Path, err))
	}
	cur, err := rules.Parse(s.cfg.Path, data, s.cfg.Rules)
	if err != nil {
		return res, s.fail(rulesError(s.cfg.Path, "has errors: fix it (fwctl validate) before editing", err))
	}
	next, e := change(cur, data, &res)
	if e != nil {
		switch e.Code {
		case CodeNotFound, CodeBadRequest, CodeEgressOmitted: // refused, not failed
		default:
			s.fail(e)
		}
		return res, e
	}
	res.Hash = cur.Hash
	if next == nil { // nothing to do
		return res, nil
	}
	f, err := rules.Parse(s.cfg.Path, next, s.cfg.Rules)
	if err != nil {
		return res, s.fail(rulesError(s.cfg.Path, "the edit would make the rules file invalid, nothing changed", err))
	}
	res.Hash, res.Changed = f.Hash, true
	res.Diff = unifiedDiff(s.cfg.Path, data, next)
	if live := liveHash(s.cfg.Target.Table()); live != cur.Hash {
		res.Notes = append(res.Notes, fmt.Sprintf("%s had changes that were not loaded yet; they are part of this change", s.cfg.Path))
	}
	if dryRun {
		return res, nil
	}
	if _, e := s.apply(ctx, f, func() error { return rules.WriteFileAtomic(s.cfg.Path, next) }); e != nil {
		return res, e
	}
	s.count(&s.stats.OK)
	s.log.Info("rules edited", "rules", s.cfg.Path, "hash", short(f.Hash), "added", len(res.Added), "deleted", len(res.Deleted))
	return res, nil
}

// Add adds rules to the edit group (created when absent), skipping those
// whose traffic a rule of the file already allows exactly, writes the
// file and swaps the new table in. With dryRun nothing changes; the
// result holds the diff.
func (s *Service) Add(ctx context.Context, req AddRequest, dryRun bool) (EditResult, error) {
	group := req.Group
	if group == "" {
		group = s.cfg.Group
	}
	if len(req.Rules) == 0 {
		return EditResult{DryRun: dryRun}, badRequest("no rules to add")
	}
	all, e := specRules(req.Rules)
	if e != nil {
		return EditResult{DryRun: dryRun}, e
	}
	return s.edit(ctx, dryRun, func(cur *rules.File, data []byte, res *EditResult) ([]byte, *Error) {
		var byDir [2][]rules.Rule
		for _, nr := range all {
			r := nr.rule
			prefixes, err := cur.ResolvePeers(r.Peers)
			if err != nil {
				return nil, badRequest(err.Error())
			}
			r.Prefixes = prefixes
			if ref, ok := findSame(cur, nr.dir, &r); ok {
				res.Skipped = append(res.Skipped, Skipped{Rule: nr.spec, Existing: info(cur, ref, numberOf(cur, ref))})
				continue
			}
			if slices.ContainsFunc(byDir[nr.dir], func(o rules.Rule) bool { return o.SameTraffic(&r) }) {
				continue
			}
			byDir[nr.dir] = append(byDir[nr.dir], r)
		}
		next := data
		for dir, rs := range byDir {
			if len(rs) == 0 {
				continue
			}
			d := direction.Dir(dir)
			out, err := rules.AddRules(s.cfg.Path, next, group, d, rs, s.cfg.Rules)
			if errors.Is(err, rules.ErrEgressOmitted) {
				return nil, &Error{Status: http.StatusConflict, Code: CodeEgressOmitted,
					Message: fmt.Sprintf("group %s allows all outbound traffic (it has no egress key); an egress rule would restrict it: add the rule to another group or write egress: [] in %s first", group, s.cfg.Path)}
			}
			if err != nil {
				return nil, rulesError(s.cfg.Path, "the edit would make the rules file invalid, nothing changed", err)
			}
			next = out
			if d == direction.Egress {
				if open := openEgress(cur); len(open) > 0 {
					res.Notes = append(res.Notes, fmt.Sprintf("all outbound traffic is allowed anyway: group %s omits egress", open[0]))
				}
			}
		}
		if slices.Equal(next, data) {
			return nil, nil
		}
		// Number the added rules as they will be.
		f, err := rules.Parse(s.cfg.Path, next, s.cfg.Rules)
		if err != nil {
			return nil, rulesError(s.cfg.Path, "the edit would make the rules file invalid, nothing changed", err)
		}
		gi := f.GroupIndex(group)
		for dir, rs := range byDir {
			d := direction.Dir(dir)
			list := f.Groups[gi].Ingress
			if d == direction.Egress {
				list = f.Groups[gi].Egress
			}
			for k := range rs {
				ref := rules.RuleRef{Group: gi, Dir: d, Index: len(list) - len(rs) + k}
				res.Added = append(res.Added, info(f, ref, numberOf(f, ref)))
			}
		}
		return next, nil
	})
}

// specRule is a request's rule with what it means in the rules file.
type specRule struct {
	spec RuleSpec
	rule rules.Rule
	dir  direction.Dir
}

// specRules checks and converts a request's rules; the error names the
// first bad one.
func specRules(specs []RuleSpec) ([]specRule, *Error) {
	out := make([]specRule, 0, len(specs))
	for i, spec := range specs {
		r, dir, err := spec.Rule()
		if err != nil {
			return nil, badRequest(fmt.Sprintf("rule %d: %v", i+1, err))
		}
		out = append(out, specRule{spec, r, dir})
	}
	return out, nil
}

// Delete removes rules by number (as status numbered shows them) or every
// rule allowing exactly the traffic of a spec, in any group.
func (s *Service) Delete(ctx context.Context, req DeleteRequest, dryRun bool) (EditResult, error) {
	if len(req.Numbers) == 0 && len(req.Rules) == 0 {
		return EditResult{DryRun: dryRun}, badRequest("nothing to delete: give rule numbers or rules")
	}
	specs, e := specRules(req.Rules)
	if e != nil {
		return EditResult{DryRun: dryRun}, e
	}
	return s.edit(ctx, dryRun, func(cur *rules.File, data []byte, res *EditResult) ([]byte, *Error) {
		numbered := cur.Numbered()
		var refs []rules.RuleRef
		seen := map[rules.RuleRef]bool{}
		add := func(ref rules.RuleRef, n int) {
			if !seen[ref] {
				seen[ref] = true
				refs = append(refs, ref)
				res.Deleted = append(res.Deleted, info(cur, ref, n))
			}
		}
		for _, n := range req.Numbers {
			if n < 1 || n > len(numbered) {
				return nil, &Error{Status: http.StatusNotFound, Code: CodeNotFound,
					Message: fmt.Sprintf("no rule %d: the rules are numbered 1 to %d (fwctl status numbered)", n, len(numbered))}
			}
			add(numbered[n-1], n)
		}
		var missing []string
		for _, m := range specs {
			r := m.rule
			prefixes, err := cur.ResolvePeers(r.Peers)
			if err != nil {
				return nil, badRequest(err.Error())
			}
			r.Prefixes = prefixes
			found := false
			for n, ref := range numbered {
				if ref.Dir == m.dir && cur.RuleAt(ref).SameTraffic(&r) {
					add(ref, n+1)
					found = true
				}
			}
			if !found {
				missing = append(missing, m.dir.Key()+" "+r.Format(m.dir))
			}
		}
		// "delete allow 53" means tcp and udp: it is enough that one of
		// them is there.
		if len(refs) == 0 {
			return nil, &Error{Status: http.StatusNotFound, Code: CodeNotFound,
				Message: fmt.Sprintf("no rule allows exactly %s (fwctl status numbered lists them)", strings.Join(missing, " or "))}
		}
		next, err := rules.DeleteRules(s.cfg.Path, data, refs, s.cfg.Rules)
		if err != nil {
			return nil, rulesError(s.cfg.Path, "the edit would make the rules file invalid, nothing changed", err)
		}
		return next, nil
	})
}

// Rules lists the live rules, numbered, with hit counts when hits is
// not nil.
func (s *Service) Rules(hits func(*filter.Table) map[filter.Result]uint64) []RuleInfo {
	t := s.cfg.Target.Table()
	if t == nil || t.File() == nil {
		return []RuleInfo{}
	}
	var counts map[filter.Result]uint64
	if hits != nil {
		counts = hits(t)
	}
	f := t.File()
	out := make([]RuleInfo, 0, f.NumRules())
	for i, ref := range f.Numbered() {
		ri := info(f, ref, i+1)
		if counts != nil {
			n := counts[filter.Result{Verdict: verdict.Accept, Dir: ref.Dir, Group: int32(ref.Group), Rule: int32(ref.Index)}]
			ri.Hits = &n
		}
		out = append(out, ri)
	}
	return out
}

func findSame(f *rules.File, dir direction.Dir, r *rules.Rule) (rules.RuleRef, bool) {
	for _, ref := range f.Numbered() {
		if ref.Dir == dir && f.RuleAt(ref).SameTraffic(r) {
			return ref, true
		}
	}
	return rules.RuleRef{}, false
}

func numberOf(f *rules.File, ref rules.RuleRef) int {
	return slices.Index(f.Numbered(), ref) + 1
}

func info(f *rules.File, ref rules.RuleRef, n int) RuleInfo {
	r := f.RuleAt(ref)
	return RuleInfo{Number: n, Group: f.Groups[ref.Group].Name, Index: ref.Index, RuleSpec: specOf(r, ref.Dir), Text: r.Format(ref.Dir)}
}

// openEgress names the groups that omit egress (so allow all outbound).
func openEgress(f *rules.File) []string {
	var out []string
	for _, g := range f.Groups {
		if g.EgressOmitted {
			out = append(out, g.Name)
		}
	}
	return out
}

func warnings(f *rules.File) []string {
	var out []string
	for _, w := range f.Warnings {
		out = append(out, w.Error())
	}
	return out
}

func readError(path string, err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeReadFailed, Message: fmt.Sprintf("read %s: %v", path, unwrapPath(err))}
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func rulesError(path, what string, err error) *Error {
	var list rules.ErrorList
	if !errors.As(err, &list) {
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeInvalidRules, Message: fmt.Sprintf("%s %s: %v", path, what, err)}
	}
	e := &Error{Status: http.StatusUnprocessableEntity, Code: CodeInvalidRules,
		Message: fmt.Sprintf("%s %s (%d error%s)", path, what, len(list), plural(len(list)))}
	for _, le := range list {
		e.Details = append(e.Details, le.Error())
	}
	return e
}

func badRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: msg}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// unifiedDiff is a minimal unified diff of two texts: the lines between
// their common head and tail. Edits change one or a few nearby places, so
// one hunk is enough to read them.
func unifiedDiff(name string, a, b []byte) string {
	al, bl := splitLines(a), splitLines(b)
	head := 0
	for head < len(al) && head < len(bl) && al[head] == bl[head] {
		head++
	}
	tail := 0
	for tail < len(al)-head && tail < len(bl)-head && al[len(al)-1-tail] == bl[len(bl)-1-tail] {
		tail++
	}
	if head == len(al) && head == len(bl) {
		return ""
	}
	const ctx = 3
	from := max(0, head-ctx)
	aEnd, bEnd := len(al)-tail, len(bl)-tail
	aTo, bTo := min(len(al), aEnd+ctx), min(len(bl), bEnd+ctx)
	var out []byte
	out = fmt.Appendf(out, "--- %s\n+++ %s\n", name, name)
	out = fmt.Appendf(out, "@@ -%s +%s @@\n", hunkRange(from, aTo-from), hunkRange(from, bTo-from))
	emit := func(mark byte, lines []string) {
		for _, l := range lines {
			out = append(out, mark)
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	emit(' ', al[from:head])
	emit('-', al[head:aEnd])
	emit('+', bl[head:bEnd])
	emit(' ', al[aEnd:aTo])
	return string(out)
}

func hunkRange(start, n int) string {
	if n == 0 {
		return strconv.Itoa(start) + ",0"
	}
	return strconv.Itoa(start+1) + "," + strconv.Itoa(n)
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	if s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	var out []string
	for {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i == len(s) {
			return out
		}
		s = s[i+1:]
	}
}
