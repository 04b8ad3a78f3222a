package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// editStep computes an edit's new file from the current one (cur,
// decoded from data) and fills res; nil bytes mean nothing to do.
type editStep func(cur *rules.File, data []byte, res *EditResult) ([]byte, *Error)

// edit runs one runtime edit. The caller does not hold s.mu.
func (s *Service) edit(ctx context.Context, dryRun bool, change editStep) (EditResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := EditResult{DryRun: dryRun}
	if s.cfg.ReadOnly != "" && !dryRun {
		// A refusal, not a failed change: it is not counted in Stats.
		// A dry run changes nothing, so it is answered.
		return res, &Error{Code: CodeReadOnly, Message: s.cfg.ReadOnly}
	}
	data, err := rules.ReadFile(s.cfg.Path, s.cfg.Rules.MaxFileBytes)
	if err != nil {
		return res, s.fail(readError(s.cfg.Path, err))
	}
	cur, err := rules.Parse(s.cfg.Path, data, s.cfg.Rules)
	if err != nil {
		return res, s.fail(rulesError(s.cfg.Path, "has errors: fix it (fwctl validate) before editing", err))
	}
	next, e := change(cur, data, &res)
	if e != nil {
		if !e.refused() {
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
	before := liveHash(s.cfg.Target.Table())
	if _, e := s.apply(ctx, f, func() error { return rules.WriteFileAtomic(s.cfg.Path, next) }); e != nil {
		s.record(ctx, ActionEdit, before, e)
		return res, e
	}
	s.record(ctx, ActionEdit, before, nil)
	s.count(&s.stats.OK)
	s.log.Info("rules edited", "rules", s.cfg.Path, "hash", short(f.Hash), "added", len(res.Added), "deleted", len(res.Deleted))
	s.finishEdit(ctx, &res)
	return res, nil
}

// Add adds rules to the edit group (created when absent), skipping those
// whose traffic a rule of the file already allows exactly, writes the
// file and swaps the new table in. With dryRun nothing changes; the
// result holds the diff.
func (s *Service) Add(ctx context.Context, req AddRequest, dryRun bool) (EditResult, error) {
	group, ifaces, e := editGroup(req, s.cfg.Group)
	if e != nil {
		return EditResult{DryRun: dryRun}, e
	}
	if strings.TrimSpace(group) == "" {
		return EditResult{DryRun: dryRun}, badRequest("bad group: group name is empty: expected a name")
	}
	if err := rules.CheckText("group name", group); err != nil {
		return EditResult{DryRun: dryRun}, badRequest(fmt.Sprintf("bad group: %v", err))
	}
	if len(req.Rules) == 0 {
		return EditResult{DryRun: dryRun}, badRequest("no rules to add")
	}
	all, e := specRules(req.Rules)
	if e != nil {
		return EditResult{DryRun: dryRun}, e
	}
	return s.edit(ctx, dryRun, func(cur *rules.File, data []byte, res *EditResult) ([]byte, *Error) {
		byDir, e := newRules(cur, all, ifaces, res)
		if e != nil {
			return nil, e
		}
		next, e := s.addRules(cur, data, group, ifaces, byDir, res)
		if e != nil || slices.Equal(next, data) {
			return nil, e
		}
		if e := s.numberAdded(next, group, byDir, res); e != nil {
			return nil, e
		}
		return next, nil
	})
}

// newRules sorts the rules to add by direction, leaving out (and listing
// in res.Skipped) those a rule of cur allows exactly, and repeats.
func newRules(cur *rules.File, all []specRule, ifaces []string, res *EditResult) ([2][]rules.Rule, *Error) {
	var byDir [2][]rules.Rule
	for _, nr := range all {
		r := nr.rule
		if err := cur.ResolveRulePeers(&r); err != nil {
			return byDir, badRequest(err.Error())
		}
		if ref, ok := findSame(cur, nr.dir, &r, ifaces); ok {
			if e := sameLimit(cur, ref, &r); e != nil {
				return byDir, e
			}
			res.Skipped = append(res.Skipped, Skipped{Rule: nr.spec, Existing: info(cur, ref, NumberOf(cur, ref))})
			continue
		}
		if slices.ContainsFunc(byDir[nr.dir], func(o rules.Rule) bool { return o.SameTraffic(&r) }) {
			continue
		}
		byDir[nr.dir] = append(byDir[nr.dir], r)
	}
	return byDir, nil
}

// addRules writes the new rules into the text of the file.
func (s *Service) addRules(cur *rules.File, data []byte, group string, ifaces []string, byDir [2][]rules.Rule, res *EditResult) ([]byte, *Error) {
	next := data
	for dir, rs := range byDir {
		if len(rs) == 0 {
			continue
		}
		d := direction.Dir(dir)
		out, err := addOn(s.cfg.Path, next, group, ifaces, d, rs, s.cfg.Rules)
		if errors.Is(err, rules.ErrNotAttached) {
			return nil, badRequest(err.Error())
		}
		if errors.Is(err, rules.ErrEgressOmitted) {
			return nil, &Error{Code: CodeEgressOmitted,
				Message: fmt.Sprintf("group %s allows all outbound traffic (it has no egress key); an egress rule would restrict it: add the rule to another group or write egress: [] in %s first", group, s.cfg.Path)}
		}
		if err != nil {
			return nil, rulesError(s.cfg.Path, "the edit would make the rules file invalid, nothing changed", err)
		}
		next = out
		if d == direction.Egress {
			if open := OpenEgress(cur); len(open) > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("all outbound traffic is allowed anyway: group %s omits egress", open[0]))
			}
		}
	}
	return next, nil
}

// numberAdded lists the added rules in res, numbered as they will be.
func (s *Service) numberAdded(next []byte, group string, byDir [2][]rules.Rule, res *EditResult) *Error {
	f, err := rules.Parse(s.cfg.Path, next, s.cfg.Rules)
	if err != nil {
		return rulesError(s.cfg.Path, "the edit would make the rules file invalid, nothing changed", err)
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
			res.Added = append(res.Added, info(f, ref, NumberOf(f, ref)))
		}
	}
	return nil
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

// Delete removes rules by number (as status numbered shows them), by ID
// (as status shows them) or every rule allowing exactly the traffic of a
// spec, in any group.
//
// Numbers and IDs are those of the live rules, which status shows: when
// the file on disk changed since they were loaded, its rules may be
// numbered differently or be other rules, and a delete by number or ID
// is refused (CodeStaleNumbers) until a reload makes the two agree.
func (s *Service) Delete(ctx context.Context, req DeleteRequest, dryRun bool) (EditResult, error) {
	if len(req.Numbers) == 0 && len(req.IDs) == 0 && len(req.Rules) == 0 {
		return EditResult{DryRun: dryRun}, badRequest("nothing to delete: give rule numbers, rule IDs or rules")
	}
	for _, id := range req.IDs {
		if !rules.IsRuleID(id) {
			return EditResult{DryRun: dryRun}, badRequest(fmt.Sprintf("bad rule ID %q: expected %s and 12 hex digits, as fwctl status shows them", clipID(id), rules.IDPrefix))
		}
	}
	specs, e := specRules(req.Rules)
	if e != nil {
		return EditResult{DryRun: dryRun}, e
	}
	if req.Interface != "" {
		if len(req.Rules) == 0 {
			return EditResult{DryRun: dryRun}, badRequest("interface: it narrows rules; numbers and IDs name one rule already")
		}
		if e := checkIface(req.Interface); e != nil {
			return EditResult{DryRun: dryRun}, e
		}
	}
	if req.Revoke && s.cfg.CutFlows == nil {
		return EditResult{DryRun: dryRun}, badRequest("revoke: this fwd cannot cut connections")
	}
	res, err := s.edit(ctx, dryRun, func(cur *rules.File, data []byte, res *EditResult) ([]byte, *Error) {
		d := deletion{seen: map[rules.RuleRef]bool{}, res: res}
		if len(req.Numbers) > 0 {
			if e := s.byNumber(cur, req.Numbers, &d); e != nil {
				return nil, e
			}
		}
		if len(req.IDs) > 0 {
			if e := s.byID(cur, req.IDs, &d); e != nil {
				return nil, e
			}
		}
		if e := bySpec(cur, specs, req.Interface, &d); e != nil {
			return nil, e
		}
		next, err := rules.DeleteRules(s.cfg.Path, data, d.refs, s.cfg.Rules)
		if err != nil {
			return nil, rulesError(s.cfg.Path, "the edit would make the rules file invalid, nothing changed", err)
		}
		return next, nil
	})
	return s.revokeAfterDelete(ctx, req.Revoke, dryRun, res, err)
}

// deletion collects the rules a delete removes, each once.
type deletion struct {
	refs []rules.RuleRef
	seen map[rules.RuleRef]bool
	res  *EditResult
}

func (d *deletion) add(f *rules.File, ref rules.RuleRef, n int) {
	if !d.seen[ref] {
		d.seen[ref] = true
		d.refs = append(d.refs, ref)
		d.res.Deleted = append(d.res.Deleted, info(f, ref, n))
	}
}

// byNumber resolves rule numbers against the live rules, the ones status
// numbered; cur is the file on disk, which must be the live one.
func (s *Service) byNumber(cur *rules.File, numbers []int, d *deletion) *Error {
	live := s.cfg.Target.Table()
	if liveHash(live) != cur.Hash {
		return &Error{Code: CodeStaleNumbers,
			Message: fmt.Sprintf("%s changed since the running rules were loaded, so rule numbers may not mean what fwctl status showed: run fwctl reload (then status numbered) first, or delete by rule (fwctl delete allow ...)", s.cfg.Path)}
	}
	// The live file has the bytes of cur: their rules and numbers are
	// the same, and refs into one are refs into the other.
	lf := live.File()
	numbered := lf.Numbered()
	for _, n := range numbers {
		if n < 1 || n > len(numbered) {
			return &Error{Code: CodeNotFound,
				Message: fmt.Sprintf("no rule %d: the rules are numbered 1 to %d (fwctl status numbered)", n, len(numbered))}
		}
		d.add(lf, numbered[n-1], n)
	}
	return nil
}

// byID resolves rule IDs against the live rules, the ones status showed;
// cur is the file on disk, which must be the live one.
func (s *Service) byID(cur *rules.File, ids []string, d *deletion) *Error {
	live := s.cfg.Target.Table()
	if liveHash(live) != cur.Hash {
		return &Error{Code: CodeStaleNumbers,
			Message: fmt.Sprintf("%s changed since the running rules were loaded, so a rule ID may not name a rule of the file: run fwctl reload (then status) first, or delete by rule (fwctl delete allow ...)", s.cfg.Path)}
	}
	lf := live.File()
	for _, id := range ids {
		ref, ok := lf.RuleByID(id)
		if !ok {
			return &Error{Code: CodeNotFound,
				Message: fmt.Sprintf("no rule %s: fwctl status lists the rules with their IDs", id)}
		}
		d.add(lf, ref, NumberOf(lf, ref))
	}
	return nil
}

// clipID shortens what was given as a rule ID to what an error should
// repeat.
func clipID(s string) string {
	n := 0
	for i := range s {
		if n == 40 {
			return s[:i] + "..."
		}
		n++
	}
	return s
}

// bySpec finds every rule of cur that allows exactly a spec's traffic,
// in a group attached to exactly iface when it is set. "delete allow 53"
// means tcp and udp: it is enough that one of them is there.
func bySpec(cur *rules.File, specs []specRule, iface string, d *deletion) *Error {
	numbered := cur.Numbered()
	var on []string // the interfaces a matching rule's group is attached to
	if iface != "" {
		on = []string{iface}
	}
	var missing []string
	for _, m := range specs {
		r := m.rule
		if err := cur.ResolveRulePeers(&r); err != nil {
			return badRequest(err.Error())
		}
		found := false
		for n, ref := range numbered {
			if ref.Dir != m.dir || (on != nil && !slices.Equal(cur.Groups[ref.Group].Interfaces, on)) {
				continue
			}
			if cur.RuleAt(ref).SameTraffic(&r) {
				d.add(cur, ref, n+1)
				found = true
			}
		}
		if !found {
			missing = append(missing, m.dir.Key()+" "+r.Format(m.dir)+onText(iface))
		}
	}
	if len(d.refs) == 0 {
		return &Error{Code: CodeNotFound,
			Message: fmt.Sprintf("no rule allows exactly %s (fwctl status numbered lists them)", strings.Join(missing, " or "))}
	}
	return nil
}

// onText is " on IFACE" for an interface, "" for none.
func onText(iface string) string {
	if iface == "" {
		return ""
	}
	return " on " + iface
}
