package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/textdiff"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// DryRun computes and returns the change and writes nothing.
	DryRun bool
	// Repair applies over values in the store that do not validate
	// (they are replaced or deleted); without it such a store is refused.
	Repair bool
}

// KeyChange is one key an apply writes or deletes.
type KeyChange struct {
	Key    string `json:"key"`
	Kind   string `json:"kind"` // group, prefix_list or serial
	Name   string `json:"name,omitempty"`
	Action string `json:"action"` // create, update or delete
}

// ApplyResult says what an apply changed (or, dry, would change).
type ApplyResult struct {
	DryRun  bool        `json:"dry_run"`
	Changed bool        `json:"changed"`
	Changes []KeyChange `json:"changes,omitempty"`
	Diff    string      `json:"diff,omitempty"` // of every changed value, unified
	// Serial is the policy serial after the apply (unchanged when
	// nothing changed).
	Serial int64 `json:"serial"`
	// Revision is the store revision the apply wrote (or, when nothing
	// was written, read).
	Revision int64 `json:"revision"`
	Ops      int   `json:"ops"`     // operations of the transaction
	Bytes    int   `json:"bytes"`   // its estimated request size
	Retries  int   `json:"retries"` // compare-and-swaps lost and made again
}

// errLostCAS is a transaction whose compares failed: someone wrote first.
var errLostCAS = errors.New("compare-and-swap lost")

// Apply makes the store's policy the rules file src (name is its name in
// errors): the groups and prefix lists that differ are written, those not
// in src deleted, and policy/serial bumped, in one transaction that
// succeeds only if no policy key and no assignment changed since they
// were read. A lost race is made again from a fresh read, up to the
// retries, then ErrConflict. The file is checked first (errors at
// file:line:col), the assembled result again; deleting a group that a
// host is assigned is refused; a change larger than one transaction may
// be is refused (ErrLimit), never split.
func (a *Admin) Apply(ctx context.Context, name string, src []byte, opts ApplyOptions) (ApplyResult, error) {
	want, err := a.desired(name, src)
	if err != nil {
		return ApplyResult{DryRun: opts.DryRun}, err
	}
	for try := 0; ; try++ {
		res, err := a.applyOnce(ctx, want, opts)
		res.Retries = try
		if !errors.Is(err, errLostCAS) {
			return res, err
		}
		if try >= a.opts.Retries {
			return res, fmt.Errorf("apply: %w (lost the compare-and-swap %d times): nothing written, run it again", ErrConflict, try+1)
		}
		if err := backoff(ctx, try); err != nil {
			return res, storeErr(err)
		}
	}
}

// desired checks the rules file and splits it into the values to store.
func (a *Admin) desired(name string, src []byte) (Policy, error) {
	f, err := rules.Parse(name, src, a.opts.Rules)
	if err != nil {
		return Policy{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(f.ACL.Ingress)+len(f.ACL.Egress) > 0 {
		return Policy{}, fmt.Errorf("%w: %s: the file has a network ACL: a fleet policy holds groups and prefix lists only", ErrInvalid, name)
	}
	for _, g := range f.Groups {
		if err := CheckName(g.Name); err != nil {
			return Policy{}, fmt.Errorf("%w: %s:%d:%d: group %v", ErrInvalid, name, g.Pos.Line, g.Pos.Col, err)
		}
	}
	for _, pl := range f.PrefixLists {
		if err := CheckName(pl.Name); err != nil {
			return Policy{}, fmt.Errorf("%w: %s:%d:%d: prefix list %v", ErrInvalid, name, pl.Pos.Line, pl.Pos.Col, err)
		}
	}
	p, err := SplitFile(f, src)
	if err != nil {
		return Policy{}, fmt.Errorf("%w: %s: %w", ErrInvalid, name, err)
	}
	if _, err := p.File(a.opts.Rules); err != nil {
		return Policy{}, fmt.Errorf("%w: %s split into keys does not validate: %w", ErrInvalid, name, err)
	}
	return p, nil
}

// applyPlan is the transaction an apply makes.
type applyPlan struct {
	cmps    []clientv3.Cmp
	ops     []clientv3.Op
	bytes   int
	changes []KeyChange
	diff    strings.Builder
	deleted []string // groups deleted
}

func (a *Admin) applyOnce(ctx context.Context, want Policy, opts ApplyOptions) (ApplyResult, error) {
	res := ApplyResult{DryRun: opts.DryRun}
	r, err := a.readPolicy(ctx)
	if err != nil {
		return res, err
	}
	res.Revision, res.Serial = r.rev, r.n
	if _, err := r.file(a.opts.Rules); err != nil && !opts.Repair {
		return res, err
	}
	plan := a.plan(r, want)
	if len(plan.ops) == 0 {
		return res, nil
	}
	if err := a.checkAssigned(ctx, r.rev, plan.deleted); err != nil {
		return res, err
	}
	a.bumpSerial(r, plan)
	res.Changed, res.Changes, res.Diff = true, plan.changes, plan.diff.String()
	res.Ops, res.Bytes, res.Serial = max(len(plan.ops), len(plan.cmps)), plan.bytes, r.n+1
	if err := a.checkLimits(len(plan.ops), len(plan.cmps), plan.bytes); err != nil {
		return res, err
	}
	if opts.DryRun {
		return res, nil
	}
	if a.beforeCommit != nil {
		a.beforeCommit()
	}
	resp, err := a.cli.Txn(ctx).If(plan.cmps...).Then(plan.ops...).Commit()
	if err != nil {
		return res, storeErr(err)
	}
	if !resp.Succeeded {
		return res, errLostCAS
	}
	res.Revision = resp.Header.Revision
	return res, nil
}

// plan diffs the read policy against the wanted one: puts for the values
// that differ, deletes for the keys that vanish, each guarded by its
// ModRevision, and guards on the whole policy and the assignments.
func (a *Admin) plan(r *policyRead, want Policy) *applyPlan {
	p := &applyPlan{bytes: txnEnvelopeBytes}
	rev := r.rev + 1
	p.guardDir(a.layout.Prefix+"policy/", rev)
	p.guardDir(a.layout.Dir(KindAssign), rev)
	p.diffKind(a.layout, KindPrefixList, r.lists, want.PrefixLists)
	p.diffKind(a.layout, KindGroup, r.groups, want.Groups)
	return p
}

// guardDir compares every key under dir: none modified after rev-1.
// (A key deleted since is not seen; only applies delete policy keys and
// they bump the serial, which is compared too.)
func (p *applyPlan) guardDir(dir string, rev int64) {
	p.cmps = append(p.cmps, clientv3.Compare(clientv3.ModRevision(dir), "<", rev).WithPrefix())
	p.bytes += 2*len(dir) + txnItemBytes
}

// txnItemBytes is what one compare or operation adds to a request
// beyond its keys and value (protobuf framing, generously), and
// txnEnvelopeBytes what the request adds around them (its header): with
// them the estimate is never below the size etcd measures
// (TestApplyLimitsMatchTheServer).
const (
	txnItemBytes     = 16
	txnEnvelopeBytes = 1024
)

func (p *applyPlan) diffKind(l Layout, k Kind, have map[string]stored, want map[string][]byte) {
	names := slices.Sorted(maps.Keys(want))
	for _, n := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	for _, n := range names {
		key := l.Key(k, n)
		old, had := have[n]
		v, keep := want[n]
		switch {
		case had && keep && bytes.Equal(old.value, v):
			continue
		case keep:
			p.ops = append(p.ops, clientv3.OpPut(key, string(v)))
			p.bytes += len(key) + len(v) + txnItemBytes
			p.change(key, k, n, map[bool]string{true: "update", false: "create"}[had])
		default:
			p.ops = append(p.ops, clientv3.OpDelete(key))
			p.bytes += len(key) + txnItemBytes
			p.change(key, k, n, "delete")
			if k == KindGroup {
				p.deleted = append(p.deleted, n)
			}
		}
		p.cmps = append(p.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", old.mod))
		p.bytes += len(key) + txnItemBytes
		aName, bName := key, key
		if !had {
			aName = "/dev/null"
		}
		if !keep {
			bName = "/dev/null"
		}
		p.diff.WriteString(textdiff.UnifiedNames(aName, bName, old.value, v))
	}
}

func (p *applyPlan) change(key string, k Kind, name, action string) {
	kind := "group"
	if k == KindPrefixList {
		kind = "prefix_list"
	}
	p.changes = append(p.changes, KeyChange{Key: key, Kind: kind, Name: name, Action: action})
}

// bumpSerial adds the serial's compare-and-swap to the plan.
func (a *Admin) bumpSerial(r *policyRead, p *applyPlan) {
	key := a.layout.Key(KindSerial, "")
	v := strconv.FormatInt(r.n+1, 10)
	p.cmps = append(p.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", r.serial.mod))
	p.ops = append(p.ops, clientv3.OpPut(key, v))
	p.bytes += 2*len(key) + len(v) + 2*txnItemBytes
	action := "update"
	if r.serial.mod == 0 {
		action = "create"
	}
	p.changes = append(p.changes, KeyChange{Key: key, Kind: "serial", Action: action})
}

// checkLimits refuses a transaction over the server's limits: one change
// is one transaction, never split (a host would enforce half of it).
func (a *Admin) checkLimits(ops, cmps, size int) error {
	if max(ops, cmps) > a.opts.MaxTxnOps {
		return fmt.Errorf("%w: the change takes %d operations and %d compares in one transaction and etcd allows %d of each (--max-txn-ops); fwd never splits a policy change: apply it in smaller steps",
			ErrLimit, ops, cmps, a.opts.MaxTxnOps)
	}
	if size > a.opts.MaxRequestBytes {
		return fmt.Errorf("%w: the change is about %s in one request and etcd allows %s (--max-request-bytes); fwd never splits a policy change: apply it in smaller steps",
			ErrLimit, byteSize(size), byteSize(a.opts.MaxRequestBytes))
	}
	return nil
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
