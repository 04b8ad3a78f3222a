package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const basePolicy = `version: 1
prefix_lists:
  office: [203.0.113.0/24]
groups:
  - name: web
    description: the nginx hosts
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: tcp, ports: 22, from: [office]}
  - name: db
    ingress:
      - {proto: tcp, ports: 5432, from: [198.18.0.0/24]}
    egress: []
`

// onlyWeb is basePolicy without group db.
const onlyWeb = `version: 1
prefix_lists:
  office: [203.0.113.0/24]
groups:
  - name: web
    description: the nginx hosts
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: tcp, ports: 22, from: [office]}
`

func newAdmin(t *testing.T, cli *clientv3.Client, opts AdminOptions) *Admin {
	t.Helper()
	l, err := NewLayout("")
	if err != nil {
		t.Fatal(err)
	}
	return NewAdmin(cli, l, opts)
}

func mustApply(t *testing.T, a *Admin, src string) ApplyResult {
	t.Helper()
	res, err := a.Apply(context.Background(), "p.yaml", []byte(src), ApplyOptions{})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

// emptied is a client of srv after every key is deleted: the subtests
// of a test share one server.
func emptied(t *testing.T, srv *etcdtest.Server) *clientv3.Client {
	t.Helper()
	cli := srv.Client(t)
	if _, err := cli.Delete(context.Background(), "", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	return cli
}

// storeRev is the store's revision now.
func storeRev(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func getKey(t *testing.T, cli *clientv3.Client, key string) string {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// meaning is a decoded file's rules as text, for comparing files.
func meaning(t *testing.T, src []byte) string {
	t.Helper()
	f, err := rules.Parse("x", src, rules.Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	var b strings.Builder
	for _, pl := range f.PrefixLists {
		fmt.Fprintf(&b, "list %s %v\n", pl.Name, pl.Prefixes)
	}
	groups := slices.Clone(f.Groups) // the order of groups means nothing
	slices.SortFunc(groups, func(x, y rules.Group) int { return strings.Compare(x.Name, y.Name) })
	for _, g := range groups {
		fmt.Fprintf(&b, "group %s %q egress-omitted=%v\n", g.Name, g.Description, g.EgressOmitted)
		for _, r := range g.Ingress {
			fmt.Fprintf(&b, "  in %s\n", r.Format(direction.Ingress))
		}
		for _, r := range g.Egress {
			fmt.Fprintf(&b, "  out %s\n", r.Format(direction.Egress))
		}
	}
	return b.String()
}

// blockStyle is a policy written in block style, with comments and a
// group that references groups.
const blockStyle = `version: 1
prefix_lists:
  lan:
    - 198.18.0.0/24 # the racks
    - 2001:db8::/64
  office: [203.0.113.0/24]
  one:
    - 198.19.0.1
groups:
  - name: web
    ingress:
      - proto: tcp
        ports: [80, 443]
        from: [any]
      - {proto: tcp, ports: 9100, from: [lan, group:db]}
    egress: []
  - name: db
    description: >-
      the databases,
      two lines
    ingress:
      - proto: tcp
        ports: 5432
        from: [group:web, office, one]
`

func TestApplyExportRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		changes   int
	}{
		{"flow style", basePolicy, 4},
		{"block style and references", blockStyle, 6},
	} {
		t.Run(tc.name, func(t *testing.T) { roundTrip(t, tc.src, tc.changes) })
	}
}

func roundTrip(t *testing.T, src string, changes int) {
	cli := etcdtest.Start(t).Client(t)
	a := newAdmin(t, cli, AdminOptions{})
	ctx := context.Background()
	res := mustApply(t, a, src)
	if !res.Changed || res.Serial != 1 || len(res.Changes) != changes {
		t.Fatalf("first apply: %+v", res)
	}
	out, _, err := a.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := meaning(t, out), meaning(t, []byte(src)); got != want {
		t.Fatalf("export means\n%s\nwant\n%s\nexport:\n%s", got, want, out)
	}
	// Applying the export, or the file again, changes nothing.
	for _, src := range []string{string(out), src} {
		rev := storeRev(t, cli)
		res = mustApply(t, a, src)
		if res.Changed || res.Serial != 1 || storeRev(t, cli) != rev {
			t.Fatalf("re-apply changed the store: %+v\n%s", res, src)
		}
	}
	if got := getKey(t, cli, "/fwd/policy/serial"); got != "1" {
		t.Fatalf("serial %q, want 1", got)
	}
	// An edit of each group keeps the policy valid and exportable.
	for _, g := range []string{"web", "db"} {
		if _, err := a.AddRule(ctx, g, []DirRule{tcpRule(8080, "group:"+g)}, false); err != nil {
			t.Fatalf("add to %s: %v", g, err)
		}
	}
	if out, _, err = a.Export(ctx); err != nil || strings.Count(string(out), "8080") != 2 {
		t.Fatalf("export after edits: %v\n%s", err, out)
	}
}

func TestApplyDryRunWritesNothing(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	a := newAdmin(t, cli, AdminOptions{})
	rev := storeRev(t, cli)
	res, err := a.Apply(context.Background(), "p.yaml", []byte(basePolicy), ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !res.DryRun || !strings.Contains(res.Diff, "--- /dev/null\n+++ /fwd/policy/groups/web\n") {
		t.Fatalf("dry run: %+v", res)
	}
	if storeRev(t, cli) != rev {
		t.Fatal("the dry run wrote to the store")
	}
}

func TestApplyDeletesVanishedKeys(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	a := newAdmin(t, cli, AdminOptions{})
	mustApply(t, a, basePolicy)
	res := mustApply(t, a, onlyWeb)
	want := []KeyChange{
		{Key: "/fwd/policy/groups/db", Kind: "group", Name: "db", Action: "delete"},
		{Key: "/fwd/policy/serial", Kind: "serial", Action: "update"},
	}
	if fmt.Sprint(res.Changes) != fmt.Sprint(want) || res.Serial != 2 {
		t.Fatalf("changes %+v serial %d, want %+v serial 2", res.Changes, res.Serial, want)
	}
	if getKey(t, cli, "/fwd/policy/groups/db") != "" || getKey(t, cli, "/fwd/policy/groups/web") == "" {
		t.Fatal("db not deleted, or web deleted")
	}
}

func TestApplyRefusals(t *testing.T) {
	many := "version: 1\ngroups:\n  - {name: web}\n"
	for i := range 130 {
		many += fmt.Sprintf("  - {name: g%d, ingress: [{proto: tcp, ports: 22, from: [any]}]}\n", i)
	}
	big := "version: 1\nprefix_lists:\n  big: ["
	for i := range 400 {
		big += fmt.Sprintf("198.18.%d.%d/32, ", i/250, i%250)
	}
	big += "198.19.0.1/32]\ngroups:\n  - {name: web, ingress: [{proto: tcp, ports: 22, from: [big]}]}\n"
	srv := etcdtest.Start(t) // one server: starting one takes a second
	for _, tc := range []struct {
		name, src string
		opts      AdminOptions
		assign    bool // h1 is assigned db
		err       error
		msg       string
	}{
		{"over 128 operations", many, AdminOptions{}, false, ErrLimit, "compares in one transaction and etcd allows 128 of each (--max-txn-ops)"},
		{"over the request size", big, AdminOptions{MaxRequestBytes: 4096}, false, ErrLimit, "etcd allows 4.0 KiB (--max-request-bytes)"},
		{"invalid file", "version: 1\ngroups:\n  - {name: web, ingress: [{proto: tcp, ports: 99999}]}\n", AdminOptions{}, false, ErrInvalid, "p.yaml:3:"},
		{"network acl", "version: 1\nacl:\n  ingress:\n    - {number: 1, action: deny, proto: all, from: [198.18.0.1]}\ngroups: [{name: web}]\n", AdminOptions{}, false, ErrInvalid, "network ACL"},
		{"group name not a key", "version: 1\ngroups:\n  - {name: \"a b\"}\n", AdminOptions{}, false, ErrInvalid, "p.yaml:3:5: group bad name \"a b\""},
		{"assigned group deleted", onlyWeb, AdminOptions{}, true, ErrRefused, "group db is assigned to h1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := emptied(t, srv)
			a := newAdmin(t, cli, tc.opts)
			mustApply(t, a, basePolicy)
			if err := a.Assign(context.Background(), "h1", "web"); err != nil {
				t.Fatal(err)
			}
			if tc.assign {
				if err := a.Assign(context.Background(), "h1", "db", "web"); err != nil {
					t.Fatal(err)
				}
			}
			rev := storeRev(t, cli)
			_, err := a.Apply(context.Background(), "p.yaml", []byte(tc.src), ApplyOptions{})
			if !errors.Is(err, tc.err) || !strings.Contains(fmt.Sprint(err), tc.msg) {
				t.Fatalf("err %v, want %v containing %q", err, tc.err, tc.msg)
			}
			if storeRev(t, cli) != rev {
				t.Fatal("a refused apply wrote to the store")
			}
		})
	}
}

// bigList is a policy of one group whose prefix list holds n addresses.
func bigList(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nprefix_lists:\n  big: [")
	for i := range n {
		fmt.Fprintf(&b, "10.%d.%d.%d/32, ", i>>16, (i>>8)&255, i&255)
	}
	b.WriteString("10.255.255.255/32]\ngroups:\n  - {name: web, ingress: [{proto: tcp, ports: 22, from: [big]}]}\n")
	return b.String()
}

// fwd's limits are the server's: what fwd accepts, the server accepts;
// what fwd refuses, the server (with fwd's check lifted) refuses too.
// The sizes sit within 0.2% of the server's 1.5 MiB.
func TestApplyLimitsMatchTheServer(t *testing.T) {
	many := func(n int) string {
		s := "version: 1\ngroups:\n"
		for i := range n {
			s += fmt.Sprintf("  - {name: g%d}\n", i)
		}
		return s
	}
	srv := etcdtest.Start(t) // one server: starting one takes a second
	for _, tc := range []struct {
		name   string
		src    string
		ok     bool   // fwd sends it, and the server takes it
		server string // else the server's refusal, with fwd's check lifted
	}{
		{"125 groups: 128 compares", many(125), true, ""},
		{"126 groups: 129 compares", many(126), false, "too many operations in txn request"},
		{"just under 1.5 MiB", bigList(98200), true, ""},
		{"just over 1.5 MiB", bigList(98400), false, "request is too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := emptied(t, srv)
			opts := rules.Options{MaxRules: 1 << 20}
			_, err := newAdmin(t, cli, AdminOptions{Rules: opts}).Apply(context.Background(), "p.yaml", []byte(tc.src), ApplyOptions{})
			if tc.ok {
				if err != nil {
					t.Fatalf("fwd or the server refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("fwd's check: %v, want ErrLimit", err)
			}
			lifted := AdminOptions{Rules: opts, MaxTxnOps: 1 << 20, MaxRequestBytes: 1 << 30}
			_, err = newAdmin(t, cli, lifted).Apply(context.Background(), "p.yaml", []byte(tc.src), ApplyOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.server) {
				t.Fatalf("the server: %v, want %q", err, tc.server)
			}
		})
	}
}

func TestApplyConflict(t *testing.T) {
	srv := etcdtest.Start(t) // one server: starting one takes a second
	for _, tc := range []struct {
		name    string
		retries int
		want    string // the file the store holds at the end
		err     error
	}{
		{"no retry: conflict", -1, onlyWeb, ErrConflict},
		{"retry: the later apply wins cleanly", 0, basePolicy, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := emptied(t, srv)
			first := newAdmin(t, cli, AdminOptions{})
			mustApply(t, first, "version: 1\ngroups:\n  - {name: web}\n")
			a := newAdmin(t, cli, AdminOptions{Retries: tc.retries})
			b := newAdmin(t, cli, AdminOptions{})
			once := sync.Once{}
			a.beforeCommit = func() { once.Do(func() { mustApply(t, b, onlyWeb) }) }
			res, err := a.Apply(context.Background(), "p.yaml", []byte(basePolicy), ApplyOptions{})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			out, _, err := a.Export(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if meaning(t, out) != meaning(t, []byte(tc.want)) {
				t.Fatalf("store holds\n%s", out)
			}
			if tc.err == nil && (res.Retries != 1 || res.Serial != 3) {
				t.Fatalf("result %+v: want 1 retry, serial 3", res)
			}
		})
	}
}

func TestParallelEditsNoneLost(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	a := newAdmin(t, cli, AdminOptions{})
	mustApply(t, a, basePolicy)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	retries := make([]int, n)
	for i := range n {
		wg.Go(func() {
			// Each edit has its own client, as 20 admins would.
			c, err := clientv3.New(clientv3.Config{Endpoints: cli.Endpoints(), Logger: zap.NewNop()})
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			r := rules.Rule{Proto: rules.Proto{Num: 6}, Ports: []rules.PortRange{{Lo: uint16(9000 + i), Hi: uint16(9000 + i)}}, Peers: []string{"office"}}
			res, err := newAdmin(t, c, AdminOptions{}).AddRule(context.Background(), "web", []DirRule{{Dir: direction.Ingress, Rule: r}}, false)
			errs[i], retries[i] = err, res.Retries
		})
	}
	wg.Wait()
	lost := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("edit %d: %v", i, err)
		}
		lost += retries[i]
	}
	out, _, err := a.Export(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if !strings.Contains(string(out), fmt.Sprintf("ports: %d,", 9000+i)) && !strings.Contains(string(out), fmt.Sprintf("ports: %d}", 9000+i)) {
			t.Errorf("port %d lost:\n%s", 9000+i, out)
		}
	}
	t.Logf("%d edits, %d lost compare-and-swaps made again", n, lost)
}

func tcpRule(port int, peers ...string) DirRule {
	return DirRule{Dir: direction.Ingress, Rule: rules.Rule{Proto: rules.Proto{Num: 6}, Ports: []rules.PortRange{{Lo: uint16(port), Hi: uint16(port)}}, Peers: peers}}
}

// An apply is guarded by the keys it does not write too: a concurrent
// edit of a group it leaves alone, or an assignment of a group it
// deletes, makes it lose the race (and, made again, see the new state).
func TestApplyGuardsWhatItRead(t *testing.T) {
	srv := etcdtest.Start(t) // one server: starting one takes a second
	for _, tc := range []struct {
		name      string
		retries   int
		meanwhile func(a *Admin) error
		err       error
	}{
		{"an edit of an untouched group", -1, func(a *Admin) error {
			_, err := a.AddRule(context.Background(), "web", []DirRule{tcpRule(8080, "any")}, false)
			return err
		}, ErrConflict},
		{"an assignment of the deleted group, made again", 0, func(a *Admin) error {
			return a.Assign(context.Background(), "h2", "db")
		}, ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := emptied(t, srv)
			other := newAdmin(t, cli, AdminOptions{})
			mustApply(t, other, basePolicy)
			a := newAdmin(t, cli, AdminOptions{Retries: tc.retries})
			once := sync.Once{}
			a.beforeCommit = func() {
				once.Do(func() {
					if err := tc.meanwhile(other); err != nil {
						t.Error(err)
					}
				})
			}
			_, err := a.Apply(context.Background(), "p.yaml", []byte(onlyWeb), ApplyOptions{})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if getKey(t, cli, "/fwd/policy/groups/db") == "" {
				t.Fatal("db deleted")
			}
		})
	}
}
