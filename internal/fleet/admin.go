package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// etcd's defaults for one request: --max-txn-ops and --max-request-bytes.
const (
	DefaultMaxTxnOps       = 128
	DefaultMaxRequestBytes = 1536 * 1024 // 1.5 MiB
)

// DefaultRetries is how many times an edit is made again after losing a
// compare-and-swap before it gives up with ErrConflict.
const DefaultRetries = 50

// The admin side's errors, besides ErrConflict; a caller tells them apart
// with errors.Is (fwctl maps them to exit codes).
var (
	// ErrUnreachable wraps a failure to reach the store.
	ErrUnreachable = errors.New("the store is unreachable")
	// ErrInvalid wraps a policy that does not validate: the file given,
	// the result of an edit, or values already in the store (the error
	// names the file or the key, line and column).
	ErrInvalid = errors.New("invalid policy")
	// ErrLimit is a change larger than one etcd transaction may be.
	ErrLimit = errors.New("over etcd's transaction limit")
	// ErrRefused is a change that would break the fleet: deleting a
	// group that something still names, a group or rule that does not
	// exist.
	ErrRefused = errors.New("refused")
)

// AdminOptions tune an Admin; the zero value means etcd's defaults.
type AdminOptions struct {
	Rules rules.Options
	// MaxTxnOps and MaxRequestBytes are the server's limits
	// (--max-txn-ops, --max-request-bytes); zero means etcd's defaults.
	MaxTxnOps       int
	MaxRequestBytes int
	// Retries bounds the retries of an edit that lost a compare-and-swap;
	// zero means DefaultRetries, negative none.
	Retries int
	// Now is the clock Status measures ages with; nil means time.Now.
	Now func() time.Time
}

// Admin makes the admin's changes to a fleet: whole-policy applies,
// one-group rule edits, host assignments, and reads them back. Every
// change is one etcd transaction guarded by compare-and-swap. An Admin is
// safe for concurrent use.
type Admin struct {
	cli    *clientv3.Client
	layout Layout
	opts   AdminOptions
	// beforeCommit, when set (by tests), runs between an edit's read and
	// its transaction: where a concurrent writer can win the race.
	beforeCommit func()
}

// NewAdmin returns an Admin over cli for the keys of layout.
func NewAdmin(cli *clientv3.Client, layout Layout, opts AdminOptions) *Admin {
	if opts.MaxTxnOps <= 0 {
		opts.MaxTxnOps = DefaultMaxTxnOps
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	switch {
	case opts.Retries == 0:
		opts.Retries = DefaultRetries
	case opts.Retries < 0:
		opts.Retries = 0
	}
	return &Admin{cli: cli, layout: layout, opts: opts}
}

// storeErr wraps an error of the client: one that says the store did not
// answer is ErrUnreachable.
func storeErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			return fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
	}
	return fmt.Errorf("store: %w", err)
}

// stored is one key's value and revisions as read.
type stored struct {
	value  []byte
	mod    int64 // ModRevision
	create int64 // CreateRevision
}

// policyRead is the policy as read at one store revision.
type policyRead struct {
	layout Layout
	rev    int64
	groups map[string]stored
	lists  map[string]stored
	serial stored // mod 0: no serial key yet
	n      int64  // the serial's value
	// bad are policy keys with a value fwd cannot read (a serial that is
	// not a number), with why.
	bad []error
}

// readPolicy reads every policy key at one revision (the latest, or
// clientv3.WithRev's).
func (a *Admin) readPolicy(ctx context.Context, opts ...clientv3.OpOption) (*policyRead, error) {
	resp, err := a.cli.Get(ctx, a.layout.Prefix+"policy/", append([]clientv3.OpOption{clientv3.WithPrefix()}, opts...)...)
	if err != nil {
		return nil, storeErr(err)
	}
	r := &policyRead{layout: a.layout, rev: resp.Header.Revision, groups: map[string]stored{}, lists: map[string]stored{}}
	for _, kv := range resp.Kvs {
		s := stored{value: kv.Value, mod: kv.ModRevision, create: kv.CreateRevision}
		switch kind, name := a.layout.Parse(string(kv.Key)); kind {
		case KindGroup:
			r.groups[name] = s
		case KindPrefixList:
			r.lists[name] = s
		case KindSerial:
			r.serial = s
			n, err := strconv.ParseInt(string(kv.Value), 10, 64)
			if err != nil || n < 0 {
				r.bad = append(r.bad, fmt.Errorf("%s: bad serial %q: expected a decimal number", kv.Key, clip(kv.Value)))
			}
			r.n = n
		}
	}
	return r, nil
}

// policy is the read policy's values.
func (r *policyRead) policy() Policy {
	p := Policy{Layout: r.layout, Groups: make(map[string][]byte, len(r.groups)), PrefixLists: make(map[string][]byte, len(r.lists))}
	for n, s := range r.groups {
		p.Groups[n] = s.value
	}
	for n, s := range r.lists {
		p.PrefixLists[n] = s.value
	}
	return p
}

// empty reports a store with no policy yet.
func (r *policyRead) empty() bool { return len(r.groups) == 0 && len(r.lists) == 0 }

// file validates the read policy; an error names the key. An empty store
// gives a nil File and no error.
func (r *policyRead) file(opts rules.Options) (*rules.File, error) {
	if r.empty() && len(r.bad) == 0 {
		return nil, nil
	}
	if len(r.bad) > 0 {
		return nil, fmt.Errorf("%w: the store holds a bad value: %w", ErrInvalid, errors.Join(r.bad...))
	}
	f, err := r.policy().File(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: the store's policy has errors (fix them with fwctl fleet apply --repair): %w", ErrInvalid, err)
	}
	return f, nil
}

// Export returns the store's policy as one rules file, checked as fwd
// checks it; a value in the store with errors is reported with its key.
func (a *Admin) Export(ctx context.Context) ([]byte, int64, error) {
	r, err := a.readPolicy(ctx)
	if err != nil {
		return nil, 0, err
	}
	if _, err := r.file(a.opts.Rules); err != nil {
		return nil, r.rev, err
	}
	if r.empty() {
		return nil, r.rev, fmt.Errorf("%w: the store holds no policy under %s (fwctl fleet apply FILE writes one)", ErrRefused, a.layout.Prefix)
	}
	text, _ := policyText(r.policy())
	return text, r.rev, nil
}

// backoff waits before the retry after the try-th lost compare-and-swap:
// a random time up to 1 ms doubled per try (at most 64 ms), so that
// writers racing for one key spread out instead of all reading again at
// once.
func backoff(ctx context.Context, try int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(try, 6)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// clip shortens a value an error repeats.
func clip(b []byte) string {
	const n = 40
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
