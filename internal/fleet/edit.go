package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/textdiff"
	"github.com/fwd-project/fwd/internal/types/direction"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DirRule is a rule to add or delete, with its direction.
type DirRule struct {
	Dir  direction.Dir
	Rule rules.Rule // Proto, Ports, ICMP, Peers, Description
}

// Text is the rule as fwctl prints it: "tcp 443 from any" (egress
// rules say "to").
func (d DirRule) Text() string {
	return d.Rule.Format(d.Dir)
}

// EditResult says what a one-group edit changed (or, dry, would change).
type EditResult struct {
	DryRun   bool     `json:"dry_run"`
	Changed  bool     `json:"changed"`
	Group    string   `json:"group"`
	Key      string   `json:"key"`
	Added    []string `json:"added,omitempty"`   // the rules added, as text
	Skipped  []string `json:"skipped,omitempty"` // already allowed exactly by a rule of the group
	Deleted  []string `json:"deleted,omitempty"`
	Diff     string   `json:"diff,omitempty"` // of the group's value, unified
	Revision int64    `json:"revision"`       // written (or read, when nothing was written)
	Retries  int      `json:"retries"`        // compare-and-swaps lost and made again
}

// groupStep computes an edit of group gi of f (decoded from text) and
// fills res; nil bytes mean nothing to do.
type groupStep func(f *rules.File, gi int, text []byte, res *EditResult) ([]byte, error)

// AddRule adds rules to group (which must exist), skipping those a rule
// of the group already allows exactly. Only the group's key is written,
// by compare-and-swap on its ModRevision; a lost race is made again from
// a fresh read up to the retries, then ErrConflict. The whole policy is
// validated with the edit before it is written.
func (a *Admin) AddRule(ctx context.Context, group string, rs []DirRule, dryRun bool) (EditResult, error) {
	if len(rs) == 0 {
		return EditResult{DryRun: dryRun}, fmt.Errorf("%w: no rules to add", ErrRefused)
	}
	return a.editGroup(ctx, group, rs, dryRun, func(f *rules.File, gi int, text []byte, res *EditResult) ([]byte, error) {
		var byDir [2][]rules.Rule
		for _, d := range rs {
			r, err := resolved(f, d.Rule)
			if err != nil {
				return nil, err
			}
			if slices.ContainsFunc(dirRules(&f.Groups[gi], d.Dir), func(o rules.Rule) bool { return o.SameTraffic(&r) }) {
				res.Skipped = append(res.Skipped, d.Text())
				continue
			}
			if !slices.ContainsFunc(byDir[d.Dir], func(o rules.Rule) bool { return o.SameTraffic(&r) }) {
				byDir[d.Dir] = append(byDir[d.Dir], r)
				res.Added = append(res.Added, d.Text())
			}
		}
		next := text
		for dir, list := range byDir {
			if len(list) == 0 {
				continue
			}
			out, err := rules.AddRules("policy", next, group, direction.Dir(dir), list, a.opts.Rules)
			if errors.Is(err, rules.ErrEgressOmitted) {
				return nil, fmt.Errorf("%w: group %s allows all outbound traffic (it has no egress key); an egress rule would restrict it: write egress: [] in the group first (fwctl fleet export, edit, fwctl fleet apply)", ErrRefused, group)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: the edit would make the policy invalid, nothing written: %w", ErrInvalid, err)
			}
			next = out
		}
		if bytes.Equal(next, text) {
			return nil, nil
		}
		return next, nil
	})
}

// DeleteRule deletes from group every rule that allows exactly the
// traffic of one of rs; a rule of rs that no rule matches is refused.
// The write is made as AddRule's is.
func (a *Admin) DeleteRule(ctx context.Context, group string, rs []DirRule, dryRun bool) (EditResult, error) {
	if len(rs) == 0 {
		return EditResult{DryRun: dryRun}, fmt.Errorf("%w: no rules to delete", ErrRefused)
	}
	return a.editGroup(ctx, group, rs, dryRun, func(f *rules.File, gi int, text []byte, res *EditResult) ([]byte, error) {
		var refs []rules.RuleRef
		var missing []string
		for _, d := range rs {
			r, err := resolved(f, d.Rule)
			if err != nil {
				return nil, err
			}
			found := false
			for i, o := range dirRules(&f.Groups[gi], d.Dir) {
				ref := rules.RuleRef{Group: gi, Dir: d.Dir, Index: i}
				if o.SameTraffic(&r) && !slices.Contains(refs, ref) {
					refs = append(refs, ref)
					res.Deleted = append(res.Deleted, DirRule{Dir: d.Dir, Rule: o}.Text())
					found = true
				}
			}
			if !found {
				missing = append(missing, d.Text())
			}
		}
		if len(refs) == 0 {
			return nil, fmt.Errorf("%w: no rule of group %s allows exactly %s (fwctl fleet export lists them)", ErrRefused, group, strings.Join(missing, " or "))
		}
		next, err := rules.DeleteRules("policy", text, refs, a.opts.Rules)
		if err != nil {
			return nil, fmt.Errorf("%w: the edit would make the policy invalid, nothing written: %w", ErrInvalid, err)
		}
		return next, nil
	})
}

// editGroup runs one group edit, again from a fresh read after each lost
// compare-and-swap.
func (a *Admin) editGroup(ctx context.Context, group string, rs []DirRule, dryRun bool, step groupStep) (EditResult, error) {
	for try := 0; ; try++ {
		res := EditResult{DryRun: dryRun, Group: group, Key: a.layout.Key(KindGroup, group), Retries: try}
		err := a.editOnce(ctx, group, rs, step, &res)
		if !errors.Is(err, errLostCAS) {
			return res, err
		}
		if try >= a.opts.Retries {
			return res, fmt.Errorf("group %s: %w (lost the compare-and-swap %d times): nothing written, run it again", group, ErrConflict, try+1)
		}
		if err := backoff(ctx, try); err != nil {
			return res, storeErr(err)
		}
	}
}

func (a *Admin) editOnce(ctx context.Context, group string, rs []DirRule, step groupStep, res *EditResult) error {
	r, err := a.readPolicy(ctx)
	if err != nil {
		return err
	}
	res.Revision = r.rev
	if _, err := r.file(a.opts.Rules); err != nil {
		return err
	}
	old, ok := r.groups[group]
	if !ok {
		return fmt.Errorf("%w: no group %q in the store (fwctl fleet export lists the groups; fwctl fleet apply creates one)", ErrRefused, group)
	}
	text, spans := policyText(r.policy())
	f, err := rules.Parse("policy", text, a.opts.Rules)
	if err != nil {
		return fmt.Errorf("%w: the store's policy has errors: %w", ErrInvalid, keyErrors(err, spans, a.layout))
	}
	gi := f.GroupIndex(group)
	next, err := step(f, gi, text, res)
	if err != nil || next == nil {
		return err
	}
	value, err := editedValue(r.policy(), group, next, a.opts.Rules)
	if err != nil {
		return err
	}
	if bytes.Equal(value, old.value) {
		res.Added = nil
		return nil
	}
	res.Changed = true
	res.Diff = textdiff.Unified(res.Key, old.value, value)
	if res.DryRun {
		return nil
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(res.Key), "=", old.mod)}
	cmps = append(cmps, a.namedGuards(r, group, rs)...)
	if a.beforeCommit != nil {
		a.beforeCommit()
	}
	resp, err := a.cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(res.Key, string(value))).Commit()
	if err != nil {
		return storeErr(err)
	}
	if !resp.Succeeded {
		return errLostCAS
	}
	res.Revision = resp.Header.Revision
	return nil
}

// editedValue takes the edited group's value out of the edited text and
// validates the whole policy with it.
func editedValue(p Policy, group string, next []byte, opts rules.Options) ([]byte, error) {
	nf, err := rules.Parse("policy", next, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: the edit would make the policy invalid, nothing written: %w", ErrInvalid, err)
	}
	split, err := SplitFile(nf, next)
	if err != nil {
		return nil, fmt.Errorf("%w: the edited policy: %w", ErrInvalid, err)
	}
	value, ok := split.Groups[group]
	if !ok {
		return nil, fmt.Errorf("%w: the edit lost group %s", ErrInvalid, group)
	}
	p.Groups[group] = value
	if _, err := p.File(opts); err != nil {
		return nil, fmt.Errorf("%w: the edit would make the policy invalid, nothing written: %w", ErrInvalid, err)
	}
	return value, nil
}

// namedGuards compares the groups and prefix lists the edit's rules name
// (other than the group edited): each must still be the one read, so
// that a concurrent apply cannot delete what the new rules refer to.
func (a *Admin) namedGuards(r *policyRead, group string, rs []DirRule) []clientv3.Cmp {
	var cmps []clientv3.Cmp
	seen := map[string]bool{a.layout.Key(KindGroup, group): true}
	guard := func(key string, s stored) {
		if !seen[key] {
			seen[key] = true
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", s.create))
		}
	}
	for _, d := range rs {
		for _, p := range d.Rule.Peers {
			if name, ok := rules.GroupRef(p); ok {
				if s, ok := r.groups[name]; ok {
					guard(a.layout.Key(KindGroup, name), s)
				}
			} else if s, ok := r.lists[p]; ok {
				guard(a.layout.Key(KindPrefixList, p), s)
			}
		}
	}
	return cmps
}

// resolved is r with its peers resolved against f (prefixes, and the
// groups it references, which must be f's).
func resolved(f *rules.File, r rules.Rule) (rules.Rule, error) {
	if err := f.ResolveRulePeers(&r); err != nil {
		return r, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return r, nil
}

func dirRules(g *rules.Group, d direction.Dir) []rules.Rule {
	if d == direction.Egress {
		return g.Egress
	}
	return g.Ingress
}
