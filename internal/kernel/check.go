package kernel

import (
	"context"
	"fmt"
	"slices"
)

// ourObjects is what fwd owns in one table: its chains with their rules,
// and the rules of other chains that jump to one of them.
type ourObjects struct {
	chains map[string][]string // chain name -> rule specs ("FWD-INPUT -i lo -j ACCEPT"), in order
	jumps  []Rule              // rules outside fwd's chains whose target is one of them
}

// familyObjects is ourObjects per table.
type familyObjects map[string]*ourObjects

// objectsFromConfig is what cfg installs in one family.
func objectsFromConfig(fam Family, cfg Config) familyObjects {
	out := familyObjects{}
	for table, chains := range wanted(fam, cfg) {
		o := &ourObjects{chains: map[string][]string{}}
		for _, c := range chains {
			specs := make([]string, len(c.rules))
			for i, r := range c.rules {
				specs[i] = c.name + " " + r
			}
			o.chains[c.name] = specs
			for _, from := range c.from {
				o.jumps = append(o.jumps, Rule{Chain: from, Spec: from + " -j " + c.name, Target: c.name})
			}
		}
		out[table] = o
	}
	return out
}

// objectsFromSave picks fwd's objects out of an iptables-save dump, in the
// tables fwd writes.
func objectsFromSave(cur Tables) familyObjects {
	out := familyObjects{}
	for _, name := range tables {
		out[name] = objectsOfTable(cur[name])
	}
	return out
}

// objectsOfTable picks fwd's objects out of one table (nil: none).
func objectsOfTable(t *Table) *ourObjects {
	o := &ourObjects{chains: map[string][]string{}}
	if t == nil {
		return o
	}
	for _, c := range t.Chains {
		if isOurs(c.Name) {
			o.chains[c.Name] = []string{}
		}
	}
	for _, r := range t.Rules {
		switch {
		case isOurs(r.Chain):
			o.chains[r.Chain] = append(o.chains[r.Chain], r.Spec)
		case r.jumpsTo(isOurs):
			o.jumps = append(o.jumps, r)
		}
	}
	return o
}

// sameShape reports whether got has the chains, rule counts and jumps of
// want: then got is want as iptables-save prints it, and its rule text may
// stand in for want's (iptables versions print some matches differently
// from how they were written).
func (want familyObjects) sameShape(got familyObjects) bool {
	for table, w := range want {
		g := got[table]
		if g == nil || len(g.chains) != len(w.chains) || len(g.jumps) != len(w.jumps) {
			return false
		}
		for name, rules := range w.chains {
			if gr, ok := g.chains[name]; !ok || len(gr) != len(rules) {
				return false
			}
		}
		for i, j := range w.jumps {
			if g.jumps[i].Chain != j.Chain || g.jumps[i].Target != j.Target {
				return false
			}
		}
	}
	return true
}

// installed is what the kernel showed right after an Install.
type installed struct {
	cfg     Config
	objects map[Family]familyObjects
}

// snapshot records, after a successful Install of cfg, fwd's objects as
// iptables-save prints them, for Check. A failed save only means Check
// compares with the rules as fwd writes them.
func (in *Installer) snapshot(ctx context.Context, cfg Config) {
	in.last = nil
	snap := &installed{cfg: cfg, objects: map[Family]familyObjects{}}
	for _, fam := range families {
		saved, err := in.run.Save(ctx, fam)
		if err != nil {
			in.log.Debug("no snapshot of the installed rules", "family", fam.String(), "err", err)
			return
		}
		got := objectsFromSave(ParseSave(saved))
		if !objectsFromConfig(fam, cfg).sameShape(got) {
			in.log.Debug("installed rules changed before the snapshot", "family", fam.String())
			return
		}
		snap.objects[fam] = got
	}
	in.last = snap
}

// Check compares the kernel's tables with what Install(cfg) puts there and
// returns one line per difference ("ipv4 filter: jump INPUT -> FWD-INPUT
// missing"); none means the rules are as installed. It looks only at fwd's
// chains and the jumps to them: rules of others elsewhere are theirs,
// except one placed before fwd's jump in a built-in chain, which would
// decide before fwd does. It changes nothing; Install repairs what it
// reports.
func (in *Installer) Check(ctx context.Context, cfg Config) ([]string, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	var drift []string
	for _, fam := range families {
		saved, err := in.run.Save(ctx, fam)
		if err != nil {
			return nil, fmt.Errorf("check %s rules: %w", fam, err)
		}
		want := objectsFromConfig(fam, cfg)
		if in.last != nil && in.last.cfg == cfg && in.last.objects[fam] != nil {
			want = in.last.objects[fam]
		}
		cur := ParseSave(saved)
		for _, table := range tables {
			for _, d := range diffTable(want[table], cur[table]) {
				drift = append(drift, fmt.Sprintf("%s %s: %s", fam, table, d))
			}
		}
	}
	return drift, nil
}

// diffTable describes how table t differs from want.
func diffTable(want *ourObjects, t *Table) []string {
	if want == nil {
		want = &ourObjects{}
	}
	got := objectsOfTable(t)
	if t == nil {
		t = &Table{}
	}
	var out []string
	for _, name := range sortedKeys(want.chains) {
		rules, ok := got.chains[name]
		if !ok {
			out = append(out, fmt.Sprintf("chain %s missing", name))
			continue
		}
		out = append(out, diffRules(name, want.chains[name], rules)...)
	}
	for _, name := range sortedKeys(got.chains) {
		if _, ok := want.chains[name]; !ok {
			out = append(out, fmt.Sprintf("unexpected chain %s", name))
		}
	}
	for _, j := range want.jumps {
		i := slices.IndexFunc(got.jumps, func(r Rule) bool { return r.Chain == j.Chain && r.Target == j.Target })
		switch {
		case i < 0:
			out = append(out, fmt.Sprintf("jump %s -> %s missing", j.Chain, j.Target))
			continue
		case got.jumps[i].Spec != j.Spec:
			out = append(out, fmt.Sprintf("jump %s -> %s changed to -A %s", j.Chain, j.Target, got.jumps[i].Spec))
		}
		if first := firstRule(t, j.Chain); first != got.jumps[i].Spec {
			out = append(out, fmt.Sprintf("jump %s -> %s is not the first rule of %s (-A %s is)", j.Chain, j.Target, j.Chain, first))
		}
	}
	for _, r := range got.jumps {
		matches := func(j Rule) bool { return r.Chain == j.Chain && r.Target == j.Target }
		if !slices.ContainsFunc(want.jumps, matches) {
			out = append(out, fmt.Sprintf("unexpected jump -A %s", r.Spec))
		}
	}
	for _, j := range want.jumps {
		n := 0
		for _, r := range got.jumps {
			if r.Chain == j.Chain && r.Target == j.Target {
				n++
			}
		}
		if n > 1 {
			out = append(out, fmt.Sprintf("jump %s -> %s present %d times", j.Chain, j.Target, n))
		}
	}
	return out
}

// diffRules describes how the rules of chain name differ from want:
// missing and unexpected rules, or the order.
func diffRules(name string, want, got []string) []string {
	if slices.Equal(want, got) {
		return nil
	}
	var out []string
	left := slices.Clone(got)
	for _, w := range want {
		if i := slices.Index(left, w); i >= 0 {
			left = slices.Delete(left, i, i+1)
			continue
		}
		out = append(out, fmt.Sprintf("rule missing: -A %s", w))
	}
	for _, g := range left {
		out = append(out, fmt.Sprintf("unexpected rule: -A %s", g))
	}
	if len(out) == 0 {
		out = append(out, fmt.Sprintf("rules of %s out of order", name))
	}
	return out
}

// firstRule is the spec of chain's first rule in t, or "" for none.
func firstRule(t *Table, chain string) string {
	for _, r := range t.Rules {
		if r.Chain == chain {
			return r.Spec
		}
	}
	return ""
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Reinstall is Install for a repair: it makes the kernel hold the rules
// cfg describes again, but a failure leaves the tables as they are (each
// family's change is one transaction) rather than removing what is left of
// fwd's rules, which would open the host while repairing it. The caller
// tries again later.
func (in *Installer) Reinstall(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("reinstall: %w", err)
	}
	for _, fam := range families {
		if err := in.apply(ctx, fam, &cfg); err != nil {
			return fmt.Errorf("reinstall %s rules: %w", fam, err)
		}
	}
	in.snapshot(ctx, cfg)
	return nil
}
