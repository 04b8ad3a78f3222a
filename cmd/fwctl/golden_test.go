package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/golden")

// liveTable is the daemon side for the tests: the live table in an atomic
// pointer, as the engine holds it.
type liveTable struct{ p atomic.Pointer[filter.Table] }

func (l *liveTable) Table() *filter.Table { return l.p.Load() }
func (l *liveTable) Swap(t *filter.Table) { l.p.Store(t) }

// daemonOpts shape the test daemon.
type daemonOpts struct {
	hits     bool // count hits per rule (a fixed, fake count)
	limits   bool // report the rules with a limit (fake counts and peers)
	noServer bool
	// clock, when set, is the daemon's fixed time (ACL expiries).
	clock time.Time
	// revoke, when set, is how many connections each added deny cuts.
	revoke int
	// history keeps a change history (its clock fixed); audit runs the
	// daemon in audit mode with fake would-drops (history_test.go).
	history, audit bool
	// fleet reports fleet mode in status, its last snapshot refused.
	fleet bool
	// cut, when set, is how many connections a change asked to revoke
	// (--revoke) cuts.
	cut int
}

// startDaemon writes the rules file into a fresh directory and serves the
// control API for it on a socket there. It returns the directory.
func startDaemon(t *testing.T, content string, o daemonOpts) (dir, rulesPath, sock string) {
	t.Helper()
	dir = t.TempDir()
	rulesPath = filepath.Join(dir, "rules.yaml")
	sock = filepath.Join(dir, "fwd.sock")
	if err := os.WriteFile(rulesPath, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if o.noServer {
		return dir, rulesPath, sock
	}
	// As fwd starts: no table, then the first load through the service.
	scfg := lifecycle.ServiceConfig{Path: rulesPath, Target: &liveTable{}}
	if !o.clock.IsZero() {
		scfg.Now = func() time.Time { return o.clock }
	}
	if o.revoke > 0 {
		scfg.Revoke = func(context.Context, direction.Dir, rules.ACLEntry) (int, error) { return o.revoke, nil }
	}
	if o.history {
		scfg.History = goldenHistory(t, rulesPath)
	}
	if o.cut > 0 {
		scfg.CutFlows = func(context.Context, *filter.Table) (int, error) { return o.cut, nil }
	}
	svc := lifecycle.NewService(scfg)
	if _, err := svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := control.ServerConfig{Socket: sock, Service: svc}
	if o.audit {
		fakeAudit(&cfg)
	}
	if o.hits {
		cfg.Counters = func() map[string]uint64 { return map[string]uint64{"accepted": 42, "dropped_no_match": 7} }
		cfg.RuleHits = func(t *filter.Table) map[filter.Result]uint64 {
			// Rule i of the first group accepted 10*(i+1) connections.
			m := map[filter.Result]uint64{}
			for i := range t.File().Groups[0].Ingress {
				m[filter.Result{Verdict: verdict.Accept, Dir: direction.Ingress, Group: 0, Rule: int32(i)}] = uint64(10 * (i + 1))
			}
			// ACL entry N decided N/100 connections.
			for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
				for _, e := range t.File().ACL.List(d) {
					m[filter.ACLKey(d, e.Number)] = uint64(e.Number / 100)
				}
			}
			return m
		}
	}
	if o.limits {
		cfg.Limits = fakeLimits
	}
	if o.fleet {
		cfg.Fleet = func() *control.FleetStatus {
			return &control.FleetStatus{Store: "etcd://198.18.0.9:2379", Host: "web-1", Revision: 42,
				Hash: "0123456789abcdef", StalenessSeconds: 3.4,
				Error: `/fwd/policy/groups/web:3:7: bad protocol "tcpp"`}
		}
	}
	srv, err := control.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		cx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(cx)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return dir, rulesPath, sock
}

// step is one command of a transcript, or (write != "") a change of the
// rules file behind the daemon's back.
type step struct {
	cmd   string
	stdin string
	write string
}

func cmds(lines ...string) []step {
	out := make([]step, len(lines))
	for i, l := range lines {
		out[i] = step{cmd: l}
	}
	return out
}

// splitWords splits a command line at spaces, keeping 'quoted words'.
func splitWords(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, has := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			inQuote, has = !inQuote, true
		case r == ' ' && !inQuote:
			if has {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if has {
		out = append(out, cur.String())
	}
	return out
}

const goldenBase = `# test host
version: 1
prefix_lists:
  office: [203.0.113.0/24, 2001:db8:100::/48]
groups:
  - name: web
    description: nginx
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any], description: http and https}

      # ssh for the office
      - {proto: tcp, ports: 22, from: [office]}
    # egress omitted: all outbound allowed
`

// goldenIfaces has a group on every interface and two attached to some.
const goldenIfaces = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
  - name: private
    interfaces: [eth1]
    ingress:
      - {proto: tcp, ports: 5432, from: [198.18.0.0/15]}
    egress: []
  - name: metrics
    interfaces: ["eth*", wg+]
    ingress:
      - {proto: tcp, ports: 9100, from: [198.18.0.0/15]}
    egress: []
`

const goldenLocked = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: udp, ports: 53, from: [any]}
      - {proto: tcp, ports: 53, from: [any]}
    egress:
      - {proto: udp, ports: 123, to: [any]}
  - name: local
    description: rules added with fwctl
    ingress:
      - {proto: tcp, ports: 8080, from: [any]}
    egress: []
`

// goldenACL is goldenLocked with an ACL: a ban (with a description), an
// exception that opens a port no group opens, an entry that expired
// long ago and one that expires long from now, and an egress entry.
const goldenACL = `version: 1
prefix_lists:
  office: [203.0.113.0/24]
acl:
  ingress:
    - {number: 200, action: allow, proto: tcp, ports: 9000, from: [office], description: office tool}
    - {number: 100, action: deny, proto: tcp, ports: [80, 443], from: [198.18.0.66], description: brute force}
    - {number: 300, action: deny, proto: all, from: [198.18.0.0/24], expires: 2020-01-01T00:00:00Z}
    - {number: 400, action: deny, proto: udp, from: [198.18.0.77], expires: 2099-01-01T00:00:00Z}
  egress:
    - {number: 100, action: deny, proto: udp, ports: 123, to: ["2001:db8::bad"]}
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: udp, ports: 53, from: [any]}
    egress:
      - {proto: udp, ports: 123, to: [any]}
`

var goldenScenarios = []struct {
	name  string
	rules string
	opts  daemonOpts
	steps []step
}{
	{name: "allow", rules: goldenBase, steps: cmds(
		"allow 443/tcp",
		"allow 80,443/tcp",
		"allow 6000:6007/udp",
		"allow 7000-7007/tcp",
		"allow 53",
		"allow ssh",
		"allow from 198.51.100.0/24",
		"allow from 203.0.113.0/24 to any port 22 proto tcp",
		"allow from office to any port 8443,9443 proto tcp",
		"allow from group:web to any port 5432 proto tcp",
		"allow from group:db to any port 5432 proto tcp",
		"allow out 53/udp",
		"allow out to 2001:db8::53 port 53 proto udp",
		"allow proto icmp from any",
		"allow proto icmp type echo-request from 198.18.0.0/15",
		"allow proto icmpv6 type 128 from 2001:db8::/32",
		"allow proto icmp icmp-type 3/4",
		"allow proto 47 from 198.18.0.1",
		"allow 8443/tcp comment 'admin panel'",
		"allow --group ops 9000/tcp",
		"allow in 8080/tcp",
		"allow from 10.0.0.0/255.255.255.0 to any port 22 proto tcp",
		"allow from 198.18.0.0/15 to 192.168.0.0/0 port 25 proto tcp",
		"allow to 0.0.0.0/0 port 2222 proto tcp",
		"allow 35:39/tcp",
		"allow in on eth1 to any port 5432 proto tcp",
		"allow on eth1 9100/tcp",
		"allow in on eth1 443/tcp",
		"allow out on eth0 123/udp",
		"allow in on eth* from 198.18.0.0/15 to any port 161 proto udp",
		"status numbered",
		"delete allow in on eth2 to any port 5432 proto tcp",
		"delete allow on eth1 9100/tcp",
		"delete allow in on e*1 443/tcp",
		"status numbered",
	)},
	{name: "allow-errors", rules: goldenBase, steps: cmds(
		"allow",
		"allow 99999/tcp",
		"allow 80,443",
		"allow 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16/tcp",
		"allow 1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16/tcp",
		"allow 6007:6000/udp",
		"allow 22/sctp",
		"allow sshh",
		"allow 22 extra",
		"allow from 203.0.113.0/24 to 2001:db8::1 port 22 proto tcp",
		"allow proto icmp from 2001:db8::/32",
		"allow from 203.0.113.0/33",
		"allow from 1.2.3",
		"allow from 203.0.113.0/24 port 22",
		"allow to 198.18.0.1 port 22 proto tcp",
		"allow in to any port 22 on eth0",
		"allow in on",
		"allow in on e*h0 22",
		"allow --group web in on eth0 22",
		"allow proto icmp type bogus",
		"allow to any port 22 proto icmp",
		"allow 0",
		"allow 0:1023/tcp",
		"allow 80,0/tcp",
		"allow port 25",
		"allow proto tcp port 25",
		"allow out port 53",
		"allow 35:39",
		"allow to any port 35:39",
		"allow from 10.0.0.0/255.0.255.255",
		"allow from 2001:db8::/255.255.0.0",
		"allow from 198.18.0.0/15 to 192.168.0.0/16 port 25 proto tcp",
		"allow from 2001:db8::/32 to 0.0.0.0/0 port 25 proto tcp",
		"allow from nolist",
		"allow --bogus 22",
		"allow -o yaml 22",
		"allow out 53/udp --group web",
		"deny 22",
		"reject 22/tcp",
		"limit ssh",
		"delete deny 22",
	)},
	{name: "delete", rules: goldenBase, steps: cmds(
		"allow 53",
		"allow out 123/udp",
		"status numbered",
		"delete allow 443/tcp",
		"delete allow 80,443/tcp",
		"delete allow 53",
		"delete 99",
		"delete x",
		"delete",
		"delete 2",
		"delete allow 53",
		"status numbered",
	)},
	// A rule's ID does not move when other rules are added; delete takes
	// it, against the live rules as it takes numbers.
	{name: "delete-id", rules: goldenBase, steps: []step{
		{cmd: "allow 53"},
		{cmd: "allow out 123/udp"},
		{cmd: "status numbered"},
		{cmd: "allow 8080/tcp"},
		{cmd: "status numbered"},
		{cmd: "delete sgr-3681c3362758"},
		{cmd: "delete sgr-3681c3362758"},
		{cmd: "delete sgr-12345"},
		{write: strings.Replace(goldenBase, "description: http and https", "description: the web site", 1)},
		{cmd: "delete sgr-cd50c0891d1f"},
		{cmd: "reload"},
		{cmd: "status"},
		{cmd: "delete sgr-cd50c0891d1f 2"},
	}},
	{name: "dry-run", rules: goldenBase, steps: cmds(
		"allow --dry-run 8080/tcp",
		"--dry-run allow from 198.18.0.0/15",
		"delete 1 --dry-run",
		"-o json --dry-run allow 8081/tcp",
		"--dry-run delete allow from office to any port ssh proto tcp",
		"--dry-run delete allow ssh",
		"status",
	)},
	{name: "status", rules: goldenLocked, opts: daemonOpts{hits: true}, steps: cmds(
		"status",
		"status numbered",
		"status verbose",
		"-o json status",
		"status bogus",
	)},
	{name: "acl", rules: goldenACL, opts: daemonOpts{hits: true}, steps: []step{
		{cmd: "status"},
		{cmd: "status numbered"},
		{cmd: "status verbose"},
		{cmd: "-o json status"},
		{cmd: "check tcp 198.18.0.66 443"},
		{cmd: "check tcp 198.18.0.67 443"},
		{cmd: "check tcp 203.0.113.9 9000"},
		{cmd: "check udp 198.18.0.5 53"},
		{cmd: "check udp 198.18.0.77 53"},
		{cmd: "check out udp 2001:db8::bad 123"},
		{cmd: "check -o json tcp 198.18.0.66 80"},
		{cmd: "check --exit-status tcp 198.18.0.66 80"},
		{cmd: "check -f $DIR/rules.yaml --batch", stdin: `{"dir":"in","proto":"tcp","src":"198.18.0.66","dport":443}
{"dir":"in","proto":"tcp","src":"203.0.113.9","dport":9000}
{"dir":"in","proto":"tcp","src":"198.18.0.67","dport":443}
{"dir":"in","proto":"tcp","src":"198.18.0.67","dport":22}
{"dir":"out","proto":"udp","dst":"2001:db8::bad","dport":123}
`},
	}},
	{name: "deny", rules: goldenACL, opts: daemonOpts{clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), revoke: 2}, steps: cmds(
		"deny from 203.0.113.9",
		"deny from 198.51.100.0/24 to any port 22 proto tcp comment 'brute force'",
		"deny from 203.0.113.9",
		"deny out to 192.0.2.66",
		"deny 53 --expire 10m",
		"--dry-run deny from 198.18.0.99",
		"insert 150 deny from 198.18.0.100 --expire 1h",
		"insert 150 allow from 198.18.0.101",
		"insert 99 allow proto tcp from 198.18.0.0/15 to any port 22",
		"status",
		"-o json deny from 2001:db8::66",
		"delete deny from 203.0.113.9",
		"delete deny from 203.0.113.9",
		"delete acl 99",
		"delete acl out 100 --dry-run",
		"delete acl out 100",
		"delete acl 7",
		"status",
	)},
	{name: "deny-errors", rules: goldenACL, opts: daemonOpts{clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, steps: cmds(
		"deny",
		"deny from 203.0.113.9 --expire soon",
		"deny from 203.0.113.9 --expire -5m",
		"deny from 203.0.113.9 --expire",
		"allow 22/tcp --expire 10m",
		"deny from 203.0.113.0/33",
		"deny from nolist",
		"deny from 203.0.113.9 port 22",
		"insert",
		"insert 100",
		"insert x deny from 203.0.113.9",
		"insert 0 deny from 203.0.113.9",
		"insert 40000 deny from 203.0.113.9",
		"insert 100 deny from 203.0.113.9",
		"insert 100 reject from 203.0.113.9",
		"insert 100 block from 203.0.113.9",
		"insert 120 deny 53",
		"delete acl",
		"delete acl x",
		"delete acl out",
		"delete deny from 198.18.0.1",
		"reject 22",
	)},
	{name: "interfaces", rules: goldenIfaces, steps: []step{
		{cmd: "check tcp 198.18.0.7 5432"},
		{cmd: "check tcp 198.18.0.7 5432 on eth1"},
		{cmd: "check in on eth0 tcp 198.18.0.7 5432"},
		{cmd: "check tcp 198.18.0.7 80 on eth0"},
		{cmd: "check tcp 198.18.0.7 9100 on eth7"},
		{cmd: "check tcp 198.18.0.7 80 on e*"},
		{cmd: "check -f $DIR/rules.yaml --batch", stdin: `{"dir":"in","proto":"tcp","src":"198.18.0.7","dport":5432,"iface":"eth1"}
{"dir":"in","proto":"tcp","src":"198.18.0.7","dport":5432,"iface":"eth0"}
{"dir":"in","proto":"tcp","src":"198.18.0.7","dport":5432}
{"dir":"in","proto":"tcp","src":"198.18.0.7","dport":5432,"iface":"bad/name"}
`},
		{cmd: "status"},
	}},
	{name: "app", rules: goldenBase, steps: cmds(
		"app list --profiles testdata/profiles",
		"app info 'Nginx Full' --profiles testdata/profiles",
		"app info 'Nginx QUIC' --profiles testdata/profiles",
		"-o json app info OpenSSH --profiles testdata/profiles",
		"app info 'Broken App' --profiles testdata/profiles",
		"app info openssh --profiles testdata/profiles",
		"app info Nothing --profiles testdata/profiles",
		"app bogus --profiles testdata/profiles",
		"allow 'Nginx Full' --profiles testdata/profiles",
		"allow from 203.0.113.0/24 to any app OpenSSH --profiles testdata/profiles",
		"allow DNS comment 'resolver' --profiles testdata/profiles",
		"allow to any app Mosh --profiles testdata/profiles",
		"allow to any port 22 app OpenSSH --profiles testdata/profiles",
		"allow app --profiles testdata/profiles",
		"allow 'Broken App' --profiles testdata/profiles",
		"allow 'No Such App' --profiles testdata/profiles",
		"allow ssh --profiles testdata/profiles",
		"status",
		"delete allow 'Nginx Full' --profiles testdata/profiles",
		"delete allow from 203.0.113.0/24 to any app OpenSSH --profiles testdata/profiles",
		"status",
	)},
	{name: "limit", rules: goldenBase, opts: daemonOpts{limits: true}, steps: cmds(
		"limit ssh",
		"limit 2222/tcp comment 'admin ssh'",
		"limit from 198.18.0.0/15 to any port 2200 proto tcp",
		"limit OpenSSH --profiles testdata/profiles",
		"limit out 22/tcp",
		"limit to any port 53 proto udp",
		"allow 22/tcp",
		"status",
		"status verbose",
		"delete limit 2222/tcp",
		"-o json status",
	)},
	{name: "history", rules: goldenBase, opts: daemonOpts{history: true}, steps: []step{
		{cmd: "history"},
		{cmd: "allow 8080/tcp"},
		{cmd: "delete allow 80,443/tcp"},
		{write: goldenBase + "  - bad\n"},
		{cmd: "reload"},
		{cmd: "history -v"},
		{cmd: "rollback --dry-run 2"},
		{cmd: "rollback 2"},
		{cmd: "rollback 2"},
		{cmd: "rollback 1"},
		{cmd: "rollback 99"},
		{cmd: "rollback x"},
		{cmd: "rollback"},
		{cmd: "history"},
		{cmd: "-o json history"},
	}},
	{name: "suggest", rules: goldenBase, opts: daemonOpts{audit: true}, steps: cmds(
		"status",
		"suggest",
		"suggest --prefix4 16",
		"suggest --prefix4 40",
		"suggest extra",
		"-o json suggest",
	)},
	{name: "status-fleet", rules: goldenBase, opts: daemonOpts{fleet: true}, steps: cmds(
		"status"),
	},
	{name: "status-no-hits", rules: goldenBase, steps: cmds(
		"status verbose",
	)},
	{name: "reload", rules: goldenBase, steps: []step{
		{cmd: "reload"},
		{write: goldenBase + "  - name: extra\n    ingress:\n      - {proto: udp, ports: 443, from: [any]}\n"},
		{cmd: "reload"},
		{write: goldenBase + "  - name: extra\n    ingress:\n      - {proto: udp, ports: 70000, from: [any]}\n      - {proto: tcp, ports: 1, from: [1.2.3]}\n"},
		{cmd: "reload"},
		{cmd: "-o json reload"},
		{cmd: "allow 8080/tcp"},
		{cmd: "status verbose"},
		{cmd: "reload extra"},
	}},
	// --revoke: the established connections the new rules no longer
	// allow are cut (the daemon's count); never on a dry run.
	{name: "revoke", rules: goldenBase, opts: daemonOpts{cut: 2}, steps: cmds(
		"allow 8080/tcp",
		"delete --revoke allow 8080/tcp",
		"delete --revoke --dry-run 1",
		"delete --revoke=false 2",
		"reload --revoke",
		"-o json reload --revoke",
		"delete --revoke deny from 198.18.0.9",
		"delete --revoke=maybe 1",
		"allow --revoke 22/tcp",
	)},
	{name: "check", rules: goldenLocked, steps: []step{
		{cmd: "check tcp 198.18.0.7 443"},
		{cmd: "check in tcp 198.18.0.7 22"},
		{cmd: "check out udp 2001:db8::53 123"},
		{cmd: "check -o json in tcp 198.18.0.7 8080"},
		{cmd: "check --batch", stdin: `{"dir":"in","proto":"tcp","src":"198.18.0.7","dst":"198.18.0.1","sport":40000,"dport":443}
{"dir":"out","proto":"udp","src":"198.18.0.1","dst":"198.18.0.9","dport":53}
{"dir":"in","proto":"tcp","src":"1.2.3"}
{"dir":"in","proto":"tcp","src":"127.0.0.1","dport":9999}
{"dir":"in","proto":"icmpv6","src":"2001:db8::1","type":135}
`},
		{cmd: "check tcp 198.18.0.7"},
		{cmd: "check tcp ::ffff:198.18.0.7 443"},
		{cmd: "check -f $DIR/rules.yaml -o json out udp 198.18.0.9 123"},
		{cmd: "check tcp 127.0.0.1 9999"},
		{cmd: "check icmpv6 2001:db8::1 135"},
		{cmd: "check -o json out icmpv6 fe80::1 neighbor-solicitation"},
		{cmd: "check icmpv6 2001:db8::1 echo-request"},
		{cmd: "check all 198.18.0.7"},
		{cmd: "check --exit-status tcp 198.18.0.7 22"},
		{cmd: "check tcp 198.18.0.7 22 80"},
	}},
	{name: "unreachable", rules: goldenBase, opts: daemonOpts{noServer: true}, steps: cmds(
		"status",
		"allow 22/tcp",
		"reload",
		"check tcp 198.18.0.7 22",
	)},
}

func TestGolden(t *testing.T) {
	for _, sc := range goldenScenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir, rulesPath, sock := startDaemon(t, sc.rules, sc.opts)
			var tr bytes.Buffer
			fmt.Fprintf(&tr, "# fwctl transcript %q: each command with its exit code, output and the\n# rules file after it. Regenerate: go test ./cmd/fwctl -run TestGolden -update\n", sc.name)
			fmt.Fprintf(&tr, "\n-- rules.yaml at the start\n%s", sc.rules)
			last := sc.rules
			for _, st := range sc.steps {
				if st.write != "" {
					if err := os.WriteFile(rulesPath, []byte(st.write), 0o644); err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&tr, "\n## the rules file is edited by hand:\n%s", st.write)
					last = st.write
					continue
				}
				args := splitWords(strings.ReplaceAll(st.cmd, "$DIR", dir))
				// The socket goes first, as a global option would.
				args = append([]string{"--socket", sock}, args...)
				var out, errb bytes.Buffer
				code := run(env{stdin: strings.NewReader(st.stdin), stdout: &out, stderr: &errb}, args)
				fmt.Fprintf(&tr, "\n$ fwctl %s\n", st.cmd)
				if st.stdin != "" {
					fmt.Fprintf(&tr, "-- stdin\n%s", st.stdin)
				}
				fmt.Fprintf(&tr, "-- exit %d\n", code)
				if out.Len() > 0 {
					fmt.Fprintf(&tr, "-- stdout\n%s", out.String())
				}
				if errb.Len() > 0 {
					fmt.Fprintf(&tr, "-- stderr\n%s", errb.String())
				}
				now, err := os.ReadFile(rulesPath)
				if err != nil {
					t.Fatal(err)
				}
				if string(now) != last {
					fmt.Fprintf(&tr, "-- rules.yaml now\n%s", now)
					last = string(now)
				}
			}
			got := scrubPeers(strings.ReplaceAll(tr.String(), dir, "$DIR"))
			path := filepath.Join("testdata", "golden", sc.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
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
		})
	}
}

// lineDiff shows the first lines where two texts differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			end := min(i+5, len(g))
			return fmt.Sprintf("line %d:\nwant: %q\ngot:  %q\ngot from there:\n%s", i+1, a, b, strings.Join(g[i:end], "\n"))
		}
	}
	return "(same lines)"
}
