package fleet

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

func TestAddDeleteRule(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	a := newAdmin(t, cli, AdminOptions{})
	ctx := context.Background()
	mustApply(t, a, basePolicy)
	db := getKey(t, cli, "/fwd/policy/groups/db")

	res, err := a.AddRule(ctx, "web", []DirRule{tcpRule(8443, "office"), tcpRule(22, "203.0.113.0/24")}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || strings.Join(res.Added, ";") != "tcp 8443 from office" || strings.Join(res.Skipped, ";") != "tcp 22 from 203.0.113.0/24" {
		t.Fatalf("add: %+v", res)
	}
	if !regexp.MustCompile(`(?m)^\+ *- \{proto: tcp, ports: 8443, from: \[office\]\}$`).MatchString(res.Diff) {
		t.Fatalf("add diff:\n%s", res.Diff)
	}
	if getKey(t, cli, "/fwd/policy/groups/db") != db || getKey(t, cli, "/fwd/policy/serial") != "1" {
		t.Fatal("an edit of web wrote another key")
	}
	// Again: nothing to do, nothing written.
	rev := storeRev(t, cli)
	if res, err = a.AddRule(ctx, "web", []DirRule{tcpRule(8443, "office")}, false); err != nil || res.Changed || storeRev(t, cli) != rev {
		t.Fatalf("add again: %+v %v", res, err)
	}

	res, err = a.DeleteRule(ctx, "web", []DirRule{tcpRule(8443, "203.0.113.0/24")}, true)
	if err != nil || !res.Changed || strings.Join(res.Deleted, ";") != "tcp 8443 from office" || storeRev(t, cli) != rev {
		t.Fatalf("dry delete: %+v %v", res, err)
	}
	if _, err = a.DeleteRule(ctx, "web", []DirRule{tcpRule(8443, "office")}, false); err != nil {
		t.Fatal(err)
	}
	out, _, err := a.Export(ctx)
	if err != nil || meaning(t, out) != meaning(t, []byte(basePolicy)) {
		t.Fatalf("after add and delete: %v\n%s", err, out)
	}
}

func TestEditRefusals(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	a := newAdmin(t, cli, AdminOptions{})
	ctx := context.Background()
	mustApply(t, a, basePolicy)
	egress := DirRule{Dir: direction.Egress, Rule: rules.Rule{Proto: rules.Proto{Num: 6}, Peers: []string{"any"}}}
	for _, tc := range []struct {
		name  string
		group string
		del   bool
		rule  DirRule
		err   error
		msg   string
	}{
		{"no such group", "nope", false, tcpRule(22, "any"), ErrRefused, `no group "nope"`},
		{"undefined prefix list", "web", false, tcpRule(22, "ofice"), ErrInvalid, `undefined prefix list "ofice"`},
		{"undefined group", "web", false, tcpRule(22, "group:nope"), ErrInvalid, `undefined group "nope"`},
		{"egress omitted", "web", false, egress, ErrRefused, "allows all outbound traffic"},
		{"delete a rule that is not there", "web", true, tcpRule(23, "any"), ErrRefused, "no rule of group web allows exactly tcp 23 from any"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rev := storeRev(t, cli)
			edit := a.AddRule
			if tc.del {
				edit = a.DeleteRule
			}
			_, err := edit(ctx, tc.group, []DirRule{tc.rule}, false)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %v containing %q", err, tc.err, tc.msg)
			}
			if storeRev(t, cli) != rev {
				t.Fatal("a refused edit wrote")
			}
		})
	}
}

// An edit that loses every compare-and-swap gives up with ErrConflict
// and writes nothing of its own.
func TestEditConflict(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	other := newAdmin(t, cli, AdminOptions{})
	mustApply(t, other, basePolicy)
	a := newAdmin(t, cli, AdminOptions{Retries: 2})
	port := 9000
	var mu sync.Mutex
	a.beforeCommit = func() { // another admin always wins the race
		mu.Lock()
		defer mu.Unlock()
		port++
		if _, err := other.AddRule(context.Background(), "web", []DirRule{tcpRule(port, "any")}, false); err != nil {
			t.Error(err)
		}
	}
	res, err := a.AddRule(context.Background(), "web", []DirRule{tcpRule(22, "any")}, false)
	if !errors.Is(err, ErrConflict) || res.Retries != 2 {
		t.Fatalf("err %v after %d retries, want ErrConflict after 2", err, res.Retries)
	}
	if v := getKey(t, cli, "/fwd/policy/groups/web"); strings.Contains(v, "ports: 22, from: [any]") || !strings.Contains(v, "9003") {
		t.Fatalf("web:\n%s", v)
	}
}

// Values in the store that do not validate are reported with their key,
// and nothing is written until an apply --repair replaces them.
func TestCorruptStore(t *testing.T) {
	srv := etcdtest.Start(t) // one server: starting one takes a second
	for _, tc := range []struct{ name, key, value, msg string }{
		{"group not yaml", "/fwd/policy/groups/db", "name: db\ningress: [\n", "groups/db"},
		{"group named apart from its key", "/fwd/policy/groups/db", "name: other\n", "other"},
		{"bad rule", "/fwd/policy/groups/db", "name: db\ningress:\n  - {proto: tcp, ports: 70000}\n", "groups/db:3:"},
		{"serial not a number", "/fwd/policy/serial", "seven", "/fwd/policy/serial: bad serial \"seven\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := emptied(t, srv)
			a := newAdmin(t, cli, AdminOptions{})
			ctx := context.Background()
			mustApply(t, a, basePolicy)
			putKey(t, cli, tc.key, tc.value)
			rev := storeRev(t, cli)
			_, _, err := a.Export(ctx)
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("%s: err %v, want ErrInvalid naming %q", what, err, tc.msg)
				}
			}
			check("export", err)
			_, err = a.Apply(ctx, "p.yaml", []byte(basePolicy), ApplyOptions{})
			check("apply", err)
			_, err = a.AddRule(ctx, "web", []DirRule{tcpRule(8080, "any")}, false)
			check("add", err)
			if storeRev(t, cli) != rev {
				t.Fatal("wrote over a corrupt store")
			}
			if tc.key == "/fwd/policy/serial" {
				return // a serial that is not a number cannot be bumped
			}
			if _, err := a.Apply(ctx, "p.yaml", []byte(basePolicy), ApplyOptions{Repair: true}); err != nil {
				t.Fatalf("apply --repair: %v", err)
			}
			if _, _, err := a.Export(ctx); err != nil {
				t.Fatalf("export after repair: %v", err)
			}
		})
	}
}

// A rule naming group:db is guarded on db: an apply that deletes db
// between the edit's read and its write makes the edit lose the race,
// and, made again, refuse the rule (db is gone).
func TestEditGuardsReferencedGroup(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	other := newAdmin(t, cli, AdminOptions{})
	mustApply(t, other, basePolicy)
	a := newAdmin(t, cli, AdminOptions{})
	once := sync.Once{}
	a.beforeCommit = func() { once.Do(func() { mustApply(t, other, onlyWeb) }) }
	res, err := a.AddRule(context.Background(), "web", []DirRule{tcpRule(8080, "group:db")}, false)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `undefined group "db"`) || res.Retries != 1 {
		t.Fatalf("err %v after %d retries, want undefined group db after 1", err, res.Retries)
	}
	if v := getKey(t, cli, "/fwd/policy/groups/web"); strings.Contains(v, "group:db") {
		t.Fatalf("web references the deleted db:\n%s", v)
	}
}

// Deleting a group that a remaining group references is refused, the
// reference named at file:line:col; nothing is written.
func TestApplyRefusesDeletingReferencedGroup(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	a := newAdmin(t, cli, AdminOptions{})
	ctx := context.Background()
	mustApply(t, a, basePolicy)
	if _, err := a.AddRule(ctx, "web", []DirRule{tcpRule(8080, "group:db", "group:web")}, false); err != nil {
		t.Fatal(err)
	}
	out, _, err := a.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The export without group db.
	noDB := regexp.MustCompile(`(?s)  - name: db\n.*?(  - name: web)`).ReplaceAllString(string(out), "$1")
	rev := storeRev(t, cli)
	_, err = a.Apply(ctx, "p.yaml", []byte(noDB), ApplyOptions{})
	if !errors.Is(err, ErrInvalid) || !regexp.MustCompile(`p\.yaml:\d+:\d+: undefined group "db"`).MatchString(err.Error()) {
		t.Fatalf("err %v, want the reference named\n%s", err, noDB)
	}
	if storeRev(t, cli) != rev {
		t.Fatal("the refused apply wrote")
	}
}
