package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
	"github.com/fwd-project/fwd/internal/rules"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func putKey(t *testing.T, cli *clientv3.Client, key, value string) {
	t.Helper()
	if _, err := cli.Put(context.Background(), key, value); err != nil {
		t.Fatal(err)
	}
}

// hostUp writes what a host's syncer writes: its addresses, and what it
// enforces.
func hostUp(t *testing.T, cli *clientv3.Client, host string, addrs []string, st *StatusValue) {
	t.Helper()
	v := HostValue{}
	for _, a := range addrs {
		v.Addrs = append(v.Addrs, netip.MustParseAddr(a))
	}
	b, _ := json.Marshal(v)
	putKey(t, cli, "/fwd/hosts/"+host, string(b))
	if st != nil {
		b, _ := json.Marshal(st)
		putKey(t, cli, "/fwd/status/"+host, string(b))
	}
}

func TestHostsMembersStatus(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	a := newAdmin(t, cli, AdminOptions{Now: func() time.Time { return now }})
	ctx := context.Background()
	mustApply(t, a, basePolicy)
	for host, groups := range map[string][]string{"web1": {"web"}, "web2": {"web"}, "db1": {"db", "web"}} {
		if err := a.Assign(ctx, host, groups...); err != nil {
			t.Fatal(err)
		}
	}
	hostUp(t, cli, "web1", []string{"198.18.0.11", "2001:db8::11"}, &StatusValue{Revision: 1, Hash: "aa", Applied: now.Add(-time.Minute)})
	hostUp(t, cli, "db1", []string{"198.18.0.21"}, &StatusValue{Revision: 2, Hash: "bb", Applied: now.Add(-time.Hour), Stale: true, Error: "etcd unreachable"})
	hostUp(t, cli, "stray", []string{"198.18.0.99"}, nil) // alive, assigned nothing
	// web2 is assigned but not alive.

	hosts, _, err := a.Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hosts {
		got = append(got, fmt.Sprintf("%s %v %v %v", h.Name, h.Groups, h.Addrs, h.Alive))
	}
	want := []string{
		"db1 [db web] [198.18.0.21] true",
		"stray [] [198.18.0.99] true",
		"web1 [web] [198.18.0.11 2001:db8::11] true",
		"web2 [web] [] false",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hosts\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for group, want := range map[string]string{"web": "[{db1 [198.18.0.21]} {web1 [198.18.0.11 2001:db8::11]}]", "db": "[{db1 [198.18.0.21]}]"} {
		m, _, err := a.Members(ctx, group)
		if err != nil || fmt.Sprint(m) != want {
			t.Errorf("members of %s: %v %v, want %s", group, m, err, want)
		}
	}
	if _, _, err := a.Members(ctx, "nope"); !errors.Is(err, ErrRefused) {
		t.Errorf("members of an undefined group: %v", err)
	}

	rep, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, h := range rep.Hosts {
		got = append(got, fmt.Sprintf("%s alive=%v reported=%v rev=%d lag=%d age=%v stale=%v %q %q", h.Host, h.Alive, h.Reported, h.Revision, h.Lag, h.Age, h.Stale, h.Hash, h.Error))
	}
	r := rep.Revision
	want = []string{
		fmt.Sprintf("db1 alive=true reported=true rev=2 lag=%d age=1h0m0s stale=true \"bb\" \"etcd unreachable\"", r-2),
		"stray alive=true reported=false rev=0 lag=0 age=0s stale=false \"\" \"\"",
		fmt.Sprintf("web1 alive=true reported=true rev=1 lag=%d age=1m0s stale=false \"aa\" \"\"", r-1),
		"web2 alive=false reported=false rev=0 lag=0 age=0s stale=false \"\" \"\"",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || rep.Serial != "1" {
		t.Fatalf("status (serial %s)\n%s\nwant\n%s", rep.Serial, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAssign(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	a := newAdmin(t, cli, AdminOptions{})
	ctx := context.Background()
	mustApply(t, a, basePolicy)
	for _, tc := range []struct {
		host   string
		groups []string
		want   string // the value of assign/HOST after, "" for none
		err    error
	}{
		{"h1", []string{"web", "db", "web"}, `["db","web"]`, nil},
		{"h1", []string{"web"}, `["web"]`, nil},
		{"h1", []string{"web", "nope"}, `["web"]`, ErrRefused},
		{"bad host", []string{"web"}, `["web"]`, ErrRefused},
		{"h1", nil, "", nil},
	} {
		err := a.Assign(ctx, tc.host, tc.groups...)
		if !errors.Is(err, tc.err) {
			t.Fatalf("assign %s %v: %v, want %v", tc.host, tc.groups, err, tc.err)
		}
		if got := getKey(t, cli, "/fwd/assign/h1"); got != tc.want {
			t.Fatalf("assign %s %v: assign/h1 is %q, want %q", tc.host, tc.groups, got, tc.want)
		}
	}
}

// TestStatusInSync: a host is in sync when the hash it reports is that
// of its groups with their references written out as the live members'
// addresses; a member leaving puts it behind until it reports again.
func TestStatusInSync(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	a := newAdmin(t, cli, AdminOptions{})
	ctx := context.Background()
	mustApply(t, a, `version: 1
groups:
  - name: db
    ingress:
      - {proto: tcp, ports: 5432, from: [group:web]}
    egress: []
  - name: web
    ingress:
      - {proto: tcp, ports: 443, from: [any]}
`)
	// What db1 enforces, written by hand.
	hashOf := func(src string) string {
		f, err := rules.Parse("want", []byte(src), rules.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return Hash(f)
	}
	dbWithTwo := hashOf("version: 1\ngroups:\n  - name: db\n    ingress:\n      - {proto: tcp, ports: 5432, from: [198.18.0.12, 198.18.0.11]}\n    egress: []\n")
	dbWithOne := hashOf("version: 1\ngroups:\n  - name: db\n    ingress:\n      - {proto: tcp, ports: 5432, from: [198.18.0.11]}\n    egress: []\n")
	for host, g := range map[string]string{"web1": "web", "web2": "web", "db1": "db"} {
		if err := a.Assign(ctx, host, g); err != nil {
			t.Fatal(err)
		}
	}
	hostUp(t, cli, "web1", []string{"198.18.0.11"}, nil)
	hostUp(t, cli, "web2", []string{"198.18.0.12"}, nil)
	hostUp(t, cli, "db1", []string{"198.18.0.21"}, &StatusValue{Revision: 9, Hash: dbWithTwo})
	db1 := func() HostStatus {
		t.Helper()
		rep, err := a.Status(ctx)
		if err != nil || rep.PolicyError != "" {
			t.Fatalf("status: %v %s", err, rep.PolicyError)
		}
		for _, h := range rep.Hosts {
			if h.Host == "db1" {
				return h
			}
		}
		t.Fatal("no db1")
		return HostStatus{}
	}
	if h := db1(); !h.InSync || h.Want != dbWithTwo {
		t.Fatalf("db1 with both web members: %+v, want in sync", h)
	}
	if _, err := cli.Delete(ctx, "/fwd/hosts/web2"); err != nil { // web2's lease ran out
		t.Fatal(err)
	}
	if h := db1(); h.InSync || h.Want != dbWithOne {
		t.Fatalf("db1 after web2 left: %+v, want behind, wanting %s", h, dbWithOne)
	}
}
