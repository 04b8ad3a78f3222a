package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/fleet"
	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The fleet transcripts run fwctl against Debian's etcd server
// (etcdtest). Besides commands, a step may be "put KEY VALUE" (what a
// host's fwd writes, or a corrupt value), "stop" (the store goes away)
// or "< FILE CMD" (CMD with FILE on its standard input).

const fleetPolicy = `version: 1
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

var fleetFiles = map[string]string{
	"policy.yaml": fleetPolicy,
	// no-db.yaml drops group db, which a host is assigned.
	"no-db.yaml": "version: 1\ngroups:\n  - name: web\n    ingress:\n      - {proto: tcp, ports: 443, from: [any]}\n",
	// drop-web.yaml drops group web, which db's rule references.
	"drop-web.yaml": "version: 1\ngroups:\n  - name: db\n    ingress:\n      - {proto: tcp, ports: 5432, from: [group:web]}\n    egress: []\n",
	"bad.yaml":      "version: 1\ngroups:\n  - name: web\n    ingress:\n      - {proto: tcp, ports: 99999, from: [any]}\n",
	"acl.yaml":      "version: 1\nacl:\n  ingress:\n    - {number: 1, action: deny, proto: all, from: [198.18.0.9]}\ngroups:\n  - {name: web}\n",
}

// fleetClock is the clock of the transcripts; the hosts' status values
// say they applied a minute and an hour before it.
var fleetClock = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

var fleetScenarios = []struct {
	name  string
	steps []string
}{
	{"fleet", []string{
		"fleet status",
		"fleet export",
		"fleet apply --dry-run $DIR/policy.yaml",
		"< policy.yaml fleet apply -",
		"fleet apply $DIR/policy.yaml",
		"fleet export",
		"fleet export --store-prefix /other/",
		"allow --group web 8443/tcp",
		"allow --group web 8443/tcp",
		"allow --dry-run --group web from office to any port 9000 proto tcp",
		"delete allow 8443/tcp --group web",
		"-o json allow --group db from 198.18.0.0/24 to any port 6432 proto tcp",
		"allow --group db from group:web to any port 6379 proto tcp",
		"fleet assign web1 web",
		"fleet assign db1 web db web",
		"fleet assign web2 web",
		"fleet assign -o json web3 web",
		"put /fwd/hosts/web1 {\"addrs\":[\"198.18.0.11\",\"2001:db8::11\"]}",
		"put /fwd/status/web1 {\"revision\":9,\"hash\":\"227c56f63fa46520b9dc91106bcd2eae489bc58de84191fc3c798b2c79572cfb\",\"applied\":\"2026-12-02T08:59:00Z\",\"stale\":false}",
		"put /fwd/hosts/db1 {\"addrs\":[\"198.18.0.21\"]}",
		"put /fwd/status/db1 {\"revision\":6,\"hash\":\"7d793037a0760186574b0282f2f435e7\",\"applied\":\"2026-12-02T08:00:00Z\",\"stale\":true,\"error\":\"store unreachable since 08:00:00\"}",
		"put /fwd/hosts/web3 {\"addrs\":[\"198.18.0.13\"]}",
		"put /fwd/status/web3 {\"revision\":4,\"hash\":\"5d41402abc4b2a76b9719d911017c592\",\"applied\":\"2026-12-02T08:58:00Z\",\"stale\":false}",
		"fleet hosts",
		"fleet members web",
		"fleet members db",
		"fleet status",
		"-o json fleet status",
		"fleet apply $DIR/no-db.yaml",
		"fleet apply $DIR/drop-web.yaml",
		"fleet apply $DIR/bad.yaml",
		"fleet apply $DIR/acl.yaml",
		"fleet apply -o json $DIR/policy.yaml",
		"fleet unassign web3",
		"fleet status",
	}},
	{"fleet-errors", []string{
		"fleet",
		"fleet bogus",
		"fleet apply",
		"fleet members",
		"fleet apply --revoke $DIR/policy.yaml",
		"fleet apply --store etcd://nohost $DIR/policy.yaml",
		"fleet status --store-prefix fwd",
		"fleet status --store-cert $DIR/client.pem",
		"fleet apply $DIR/missing.yaml",
		"fleet assign web1",
		"fleet assign web1 nope",
		"fleet apply $DIR/policy.yaml",
		"fleet assign 'bad host' web",
		"fleet members nope",
		"allow 22/tcp",
		"allow --group nope 22/tcp",
		"allow --group web from nolist to any port 22 proto tcp",
		"allow --group web in on eth0 22/tcp",
		"allow --group web --confirm 1m 22/tcp",
		"limit --group web 22/tcp",
		"delete 1",
		"delete allow --group web 23/tcp",
		"put /fwd/policy/groups/db name: db\ningress: [{proto: tcp, ports: 70000, from: [any]}]\n",
		"fleet export",
		"fleet apply $DIR/policy.yaml",
		"allow --group web 8443/tcp",
		"fleet apply --repair $DIR/policy.yaml",
		"stop",
		"fleet status --store-timeout 1s",
		"allow --group web 22/tcp --store-timeout 1s",
	}},
}

func TestFleetGolden(t *testing.T) {
	for _, sc := range fleetScenarios {
		t.Run(sc.name, func(t *testing.T) {
			srv := etcdtest.Start(t)
			cli := srv.Client(t)
			store := srv.Endpoints()[0]
			dir := t.TempDir()
			for name, content := range fleetFiles {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			e := env{env: map[string]string{"FWD_STORE": store}, clock: func() time.Time { return fleetClock }}
			var tr bytes.Buffer
			fmt.Fprintf(&tr, "# fwctl transcript %q: fleet mode against a real etcd ($STORE, given as FWD_STORE).\n# Regenerate: go test ./cmd/fwctl -run TestFleetGolden -update\n", sc.name)
			for _, st := range sc.steps {
				switch {
				case st == "stop":
					srv.Stop()
					fmt.Fprintf(&tr, "\n## the store stops\n")
					continue
				case strings.HasPrefix(st, "put "):
					key, value, _ := strings.Cut(strings.TrimPrefix(st, "put "), " ")
					if _, err := cli.Put(context.Background(), key, value); err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&tr, "\n## put %s\n%s\n", key, strings.TrimSuffix(value, "\n"))
					continue
				}
				stdin := ""
				if rest, ok := strings.CutPrefix(st, "< "); ok { // "< FILE CMD": FILE on standard input
					name, cmd, _ := strings.Cut(rest, " ")
					stdin, st = fleetFiles[name], cmd
					fmt.Fprintf(&tr, "\n## standard input: %s", name)
				}
				var out, errb bytes.Buffer
				e.stdin, e.stdout, e.stderr = strings.NewReader(stdin), &out, &errb
				code := run(e, splitWords(strings.ReplaceAll(st, "$DIR", dir)))
				fmt.Fprintf(&tr, "\n$ fwctl %s\n-- exit %d\n", st, code)
				if out.Len() > 0 {
					fmt.Fprintf(&tr, "-- stdout\n%s", out.String())
				}
				if errb.Len() > 0 {
					fmt.Fprintf(&tr, "-- stderr\n%s", errb.String())
				}
			}
			got := strings.ReplaceAll(strings.ReplaceAll(tr.String(), store, "$STORE"), dir, "$DIR")
			checkGolden(t, filepath.Join("testdata", "golden", sc.name+".txt"), got)
		})
	}
}

// checkGolden compares got with the golden file path (or, with -update,
// writes it).
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("transcript differs from %s (run with -update to accept):\n%s", path, lineDiff(string(want), got))
	}
}

// TestStoreExit: each kind of fleet error has its exit code, as the
// README's table says.
func TestStoreExit(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: x", fleet.ErrUnreachable), exitUnreach},
		{fmt.Errorf("group web: %w", fleet.ErrConflict), exitConflict},
		{fmt.Errorf("%w: p.yaml:3:7: x", fleet.ErrInvalid), exitRejected},
		{fmt.Errorf("%w: x", fleet.ErrRefused), exitRejected},
		{fmt.Errorf("%w: x", fleet.ErrLimit), exitRejected},
		{fmt.Errorf("store: %w", status.Error(codes.PermissionDenied, "etcdserver: permission denied")), exitPermission},
		{fmt.Errorf("store: %w", status.Error(codes.Unauthenticated, "etcdserver: invalid auth token")), exitPermission},
		{errors.New("other"), exitRejected},
	} {
		if got := storeExit(tc.err); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestFleetParallelAllow: 20 fwctl allow --group web at once, each its
// own client, all land (compare-and-swap, retried), none lost.
func TestFleetParallelAllow(t *testing.T) {
	srv := etcdtest.Start(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fleetPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	fwctlAt := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, env: map[string]string{"FWD_STORE": srv.Endpoints()[0]}}
		return run(e, args), out.String(), errb.String()
	}
	if code, _, stderr := fwctlAt("fleet", "apply", policy); code != exitOK {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if code, _, stderr := fwctlAt("allow", "--group", "web", fmt.Sprintf("%d/tcp", 9000+i)); code != exitOK {
				t.Errorf("allow %d: exit %d: %s", 9000+i, code, stderr)
			}
		})
	}
	wg.Wait()
	_, out, _ := fwctlAt("fleet", "export")
	for i := range n {
		if !strings.Contains(out, fmt.Sprintf("ports: %d, from: [any]}", 9000+i)) {
			t.Errorf("port %d lost:\n%s", 9000+i, out)
		}
	}
}

// TestStoreOptsNeedAStore: a store option without a store is a usage
// error, not an edit sent to the local fwd; without FWD_STORE, fleet
// commands ask for one.
func TestStoreOptsNeedAStore(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"allow", "--store-prefix", "/x/", "--group", "web", "22/tcp"}, "fwctl allow: --store-prefix is for fleet mode: name the store too (--store URLS, or FWD_STORE)"},
		{[]string{"delete", "allow", "22/tcp", "--store-ca", "ca.pem"}, "fwctl delete: --store-ca is for fleet mode"},
		{[]string{"fleet", "status"}, "fwctl fleet status: no store: give --store etcd://HOST:PORT (or unix://PATH), or set FWD_STORE"},
		{[]string{"status", "--store", "etcd://h:2379"}, "fwctl status: unknown option --store"},
	} {
		var out, errb bytes.Buffer
		code := run(env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, env: map[string]string{}}, tc.args)
		if code != exitUsage || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("fwctl %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errb.String(), exitUsage, tc.msg)
		}
	}
}
