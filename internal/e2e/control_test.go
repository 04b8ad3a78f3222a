package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/rules"
)

// The control plane against the real daemon: fwctl edits and reloads
// change what the kernel lets through, at once, all or nothing.

// copyDefaultRules puts a copy of the shipped rules in the test's
// directory, since fwctl edits write to the rules file.
func (e *env) copyDefaultRules() string {
	e.t.Helper()
	b, err := os.ReadFile(defaultRules())
	if err != nil {
		e.t.Fatal(err)
	}
	return e.writeRules("rules.yaml", string(b))
}

// ingressTexts lists a group's ingress rules in words ("tcp 8080 from
// any"); nil when the group is absent.
func ingressTexts(t *testing.T, path, group string) []string {
	t.Helper()
	f, err := rules.Load(path, rules.Options{})
	if err != nil {
		t.Fatalf("the rules file no longer loads: %v", err)
	}
	i := f.GroupIndex(group)
	if i < 0 {
		return nil
	}
	var out []string
	for _, r := range f.Groups[i].Ingress {
		out = append(out, r.String())
	}
	return out
}

// TestFwctlAllowOpensPort: fwctl allow 8080/tcp on a running fwd opens
// 8080 at once over both families and writes the rule to the file (group
// local, the file's comments kept); status verbose counts its hits;
// fwctl delete allow 8080/tcp closes it again for new connections.
func TestFwctlAllowOpensPort(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	path := e.copyDefaultRules()
	e.startFwd("--rules", path, "--queues", "2")
	parallel(
		func() { e.mustDrop(url("http", server4, 8080), "") },
		func() { e.mustDrop(url("http", server6, 8080), "") },
		func() { e.mustPass(url("http", server4, 80), "") },
	)

	r := e.mustFwctl("allow", "8080/tcp")
	if !strings.Contains(r.stdout, "Rule added: tcp 8080 from any (rule 7, id sgr-644190f08ff1, group local)") {
		t.Errorf("%s\nwant the added rule reported as rule 7 of group local, with its ID", r)
	}
	parallel(
		func() { e.mustPass(url("http", server4, 8080), "") },
		func() { e.mustPass(url("http", server6, 8080), "") },
	)
	if got := ingressTexts(t, path, "local"); !slices.Equal(got, []string{"tcp 8080 from any"}) {
		t.Errorf("group local in the rules file: %q, want [tcp 8080 from any]", got)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# fwd default rules") || !strings.Contains(string(data), "# egress omitted") {
		t.Errorf("the edit lost the file's comments:\n%s", data)
	}

	st := e.status()
	if sum := sha256.Sum256(data); st.Hash != hex.EncodeToString(sum[:]) {
		t.Errorf("live hash %s is not the rules file's", st.Hash)
	}
	var hits *uint64
	for _, ri := range st.Rules {
		if ri.Group == "local" && slices.Equal(ri.Ports, []string{"8080"}) {
			hits = ri.Hits
		}
	}
	if hits == nil || *hits < 2 {
		t.Errorf("status -o json: 8080 rule hits %v, want at least 2 (one per family):\n%+v", hits, st.Rules)
	}
	// The edit kept the 80,443 rule, and its count (issue 9).
	for _, ri := range st.Rules {
		if slices.Equal(ri.Ports, []string{"80", "443"}) && (ri.Hits == nil || *ri.Hits < 1) {
			t.Errorf("status -o json: 80,443 rule hits %v after the edit, want the connection made before it counted", ri.Hits)
		}
	}
	v := e.mustFwctl("status", "verbose")
	row := ""
	for l := range strings.SplitSeq(v.stdout, "\n") {
		if strings.HasPrefix(l, "8080/tcp ") {
			row = l
		}
	}
	f := strings.Fields(row)
	if len(f) < 3 || f[len(f)-3] != "local" || f[len(f)-2] != "sgr-644190f08ff1" {
		t.Fatalf("status verbose has no 8080/tcp row of group local with its ID:\n%s", v.stdout)
	}
	if n, err := strconv.Atoi(f[len(f)-1]); err != nil || n < 2 {
		t.Errorf("status verbose: 8080/tcp hits %q, want at least 2:\n%s", f[len(f)-1], v.stdout)
	}

	r = e.mustFwctl("delete", "allow", "8080/tcp")
	if !strings.Contains(r.stdout, "Rule deleted: tcp 8080 from any") {
		t.Errorf("%s\nwant the deleted rule reported", r)
	}
	parallel(
		func() { e.mustDrop(url("http", server4, 8080), "") },
		func() { e.mustDrop(url("http", server6, 8080), "") },
		func() { e.mustPass(url("http", server6, 80), "") },
	)
	if got := ingressTexts(t, path, "local"); len(got) != 0 {
		t.Errorf("group local after the delete: %q, want no rules", got)
	}
}

// TestFwctlUnprivilegedRefused: fwctl run as nobody against the live
// daemon is refused with exit 4 (permission denied): by the socket's mode
// first, and by the daemon's SO_PEERCRED check when the mode lets it
// connect. Nothing changes.
func TestFwctlUnprivilegedRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := e.copyDefaultRules()
	f := e.startFwd("--rules", path, "--queues", "1")
	before := e.status()
	fi, err := os.Stat(e.socket())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want a socket with 0600", fi.Mode())
	}

	// A copy nobody may run; the directories on the way to it and to the
	// socket (t.TempDir's parent is 0700) let nobody through.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir, e.dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	// Copied by another process: a file this one wrote could be held
	// open by a child forked meanwhile, and fail to run (text file busy).
	bin := filepath.Join(dir, "fwctl")
	mustRun(t, "install", "-m", "0755", fwctlBin(t), bin)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}
	args := []string{"--socket", e.socket(), "allow", "8080/tcp"}

	r := runFwctl(bin, nobody, args...)
	if r.code != 4 || !strings.Contains(r.stderr, "permission denied: cannot connect") {
		t.Errorf("%s\nwant exit 4, permission denied (the socket is 0600)", r)
	}

	// Let nobody connect: the daemon itself must refuse.
	if err := os.Chmod(e.socket(), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{args, {"--socket", e.socket(), "status"}} {
		from := f.mark()
		r := runFwctl(bin, nobody, args...)
		if r.code != 4 || !strings.Contains(r.stderr, "permission denied: uid 65534 is not root") {
			t.Errorf("%s\nwant exit 4, the daemon's permission denied for uid 65534", r)
		}
		// The reply can reach fwctl before the log line reaches the test.
		if l := f.waitLog(from, "connection refused"); !strings.Contains(l, "uid=65534") {
			t.Errorf("fwd did not log the refused peer: %s", l)
		}
	}
	after := e.status()
	// Two refused calls, two lines: fwctl's probe connection is not one.
	// (The status call above was answered after both were logged.)
	if n := strings.Count(f.log(), "connection refused"); n != 2 {
		t.Errorf("fwd logged %d refused connections for 2 refused calls:\n%s", n, f.log())
	}
	if after.Hash != before.Hash || len(after.Rules) != len(before.Rules) {
		t.Errorf("refused calls changed the rules: hash %s -> %s, %d -> %d rules", before.Hash, after.Hash, len(before.Rules), len(after.Rules))
	}
	if got := ingressTexts(t, path, "local"); got != nil {
		t.Errorf("refused allow wrote group local: %q", got)
	}
}

// Rules of the reload storm. Both valid files allow 22; A adds 80, B
// 8080. C would allow 443, but has an error on line 9: it must never be
// applied, not even in part.
const (
	stormA = `version: 1
# A: ssh and http
groups:
  - name: both
    ingress:
      - {proto: tcp, ports: 22, from: [any]}
  - name: a
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
`
	stormB = `version: 1
# B: ssh and 8080
groups:
  - name: both
    ingress:
      - {proto: tcp, ports: 22, from: [any]}
  - name: b
    ingress:
      - {proto: tcp, ports: 8080, from: [any]}
`
	stormC = `version: 1
# C: invalid
groups:
  - name: both
    ingress:
      - {proto: tcp, ports: 22, from: [any]}
  - name: c
    ingress:
      - {proto: tcp, ports: 99999, from: [any]}
      - {proto: tcp, ports: 443, from: [any]}
`
)

// stormAllows says which ports a valid table of the storm lets in; the
// second is its own.
func stormAllows(table string) []int {
	if table == "A" {
		return []int{22, 80}
	}
	return []int{22, 8080}
}

// epoch is a span of time during which one table was certainly live:
// from the acknowledgement of its reload to the start of the next
// reload that changed the table.
type epoch struct {
	table      string
	from, till time.Time
}

// probe is one connection attempt from the client.
type probe struct {
	host       string
	port       int
	start, end time.Time
	passed     bool
	retrans    uint32 // SYN retransmissions of a passed connection
	err        error  // neither passed nor timed out
}

// connectProbe opens a TCP connection from the current (client) namespace
// and closes it: passed when the handshake completed within timeout.
func connectProbe(host string, port int, timeout time.Duration) probe {
	p := probe{host: host, port: port, start: time.Now()}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), timeout)
	p.end = time.Now()
	if err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			p.err = err
		}
		return p
	}
	defer c.Close()
	p.passed = true
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		p.err = err
		return p
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || ierr != nil {
		p.err = errors.Join(err, ierr)
		return p
	}
	p.retrans = info.Total_retrans
	return p
}

// probeTimeout: a port both tables allow gets time for SYN retransmits
// (so that a slow verdict is told from a drop: a passed connection that
// needed one had its first SYN dropped); the others are given up on
// quickly, since their drops are not timed.
func probeTimeout(port int) time.Duration {
	if port == 22 {
		return 3 * time.Second
	}
	return 100 * time.Millisecond
}

// kernelQueues reads the server namespace's NFQUEUE statistics.
func (e *env) kernelQueues() []nfq.KernelStats {
	e.t.Helper()
	out, err := inNS(e.server, "cat", nfq.ProcPath)
	if err != nil {
		e.t.Fatalf("read %s: %v %s", nfq.ProcPath, err, out)
	}
	stats, err := nfq.ParseKernelStats(strings.NewReader(out))
	if err != nil {
		e.t.Fatal(err)
	}
	return stats
}

var lineColRE = regexp.MustCompile(`rules\.yaml:9:\d+: `)

// TestReloadStorm: 100 reloads, by fwctl reload and by SIGHUP, alternate
// two valid files and a bad one while clients connect over both
// families. Every queued packet gets a verdict; every connection's fate
// agrees with a valid table (22 always passes on its first SYN, 443 never
// does, 80 and 8080 never pass while the table that drops them is live);
// the bad file is never applied and fwctl names its error's line and
// column; each valid reload is in force once acknowledged; the live hash
// at the end is the last valid file's.
func TestReloadStorm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	path := e.writeRules("rules.yaml", stormB)
	f := e.startFwd("--rules", path, "--queues", "2")
	hashOf := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	hash := map[string]string{"A": hashOf(stormA), "B": hashOf(stormB)}
	epochs := []epoch{{table: "B", from: time.Now()}}

	// Clients: each cycles through the ports until the storm is over.
	stop := make(chan struct{})
	clientsEnd := time.Now().Add(2 * time.Minute)
	var wg sync.WaitGroup
	results := make([][]probe, 6)
	for w := range results {
		host := server4
		if w%2 == 1 {
			host = server6
		}
		wg.Go(func() {
			err := do(e.client, func() error {
				ports := []int{22, 80, 8080, 443}
				for i := w; i < 5000 && time.Now().Before(clientsEnd); i++ {
					select {
					case <-stop:
						return nil
					default:
					}
					port := ports[i%len(ports)]
					results[w] = append(results[w], connectProbe(host, port, probeTimeout(port)))
				}
				return nil
			})
			if err != nil {
				results[w] = append(results[w], probe{host: host, err: err})
			}
		})
	}
	stopped := false
	stopClients := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopClients()

	live := "B"
	var ok, failed int
	for i := range 100 {
		name, body := []string{"A", "C", "B", "C"}[i%4], []string{stormA, stormC, stormB, stormC}[i%4]
		writeAtomic(t, path, body)
		viaSignal := i%3 == 0
		start := time.Now()
		var outcome string
		if viaSignal {
			outcome = f.reload("reload")
		} else {
			r := e.fwctl("reload")
			outcome = r.String()
			if name == "C" && r.code != 1 || name != "C" && r.code != 0 {
				t.Fatalf("reload %d (%s): %s\nwant exit %d", i, name, r, map[bool]int{true: 1, false: 0}[name == "C"])
			}
		}
		switch {
		case name == "C":
			failed++
			if !lineColRE.MatchString(outcome) || viaSignal && !strings.Contains(outcome, "reload failed") {
				t.Errorf("reload %d of the bad file: %s\nwant a failure naming rules.yaml:9:COL", i, outcome)
			}
		default:
			ok++
			if !strings.Contains(outcome, "reloaded") && !strings.Contains(outcome, "Rules reloaded") {
				t.Errorf("reload %d (%s): %s\nwant it reloaded", i, name, outcome)
			}
			epochs[len(epochs)-1].till = start
			epochs = append(epochs, epoch{table: name, from: time.Now()})
			live = name
		}
		if st := e.status(); st.Hash != hash[live] {
			t.Fatalf("after reload %d (%s, signal %v): live hash %.12s, want %s's %.12s", i, name, viaSignal, st.Hash, live, hash[live])
		}
		// The live table is in force now: its own port passes.
		host := []string{server4, server6}[i%2]
		own := stormAllows(live)[1]
		var p probe
		if err := do(e.client, func() error { p = connectProbe(host, own, 3*time.Second); return nil }); err != nil {
			t.Fatal(err)
		}
		if !p.passed {
			t.Fatalf("after reload %d (%s): %s port %d, which the live table %s allows, does not pass: %v", i, name, host, own, live, p.err)
		}
	}
	stopClients()

	// Every queued packet answered: fwd's verdicts add up to what the
	// kernel queued, nothing waits, nothing was lost on the way.
	var queued, answered uint64
	var kernel []nfq.KernelStats
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := e.status()
		queued = counter(t, st, "queued")
		answered = counter(t, st, "accepted") + counter(t, st, "dropped_no_match") +
			counter(t, st, "dropped_undecodable") + counter(t, st, "dropped_no_table")
		kernel = e.kernelQueues()
		waiting := uint32(0)
		for _, k := range kernel {
			waiting += k.Waiting
		}
		if queued == answered && waiting == 0 || time.Now().After(deadline) {
			if st.Hash != hash["B"] {
				t.Errorf("live hash at the end %.12s, want B's (the last valid file loaded) %.12s", st.Hash, hash["B"])
			}
			if st.Reloads.OK != uint64(ok) || st.Reloads.Failed != uint64(failed) || st.Reloads.Unchanged != 0 {
				t.Errorf("reload counters %+v, want %d ok, %d failed, 0 unchanged", st.Reloads, ok, failed)
			}
			for _, c := range []string{"dropped_undecodable", "dropped_no_table"} {
				if n := counter(t, st, c); n != 0 {
					t.Errorf("%s = %d, want 0", c, n)
				}
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var kernelQueued uint64
	for _, k := range kernel {
		kernelQueued += uint64(k.IDSequence)
		if k.Waiting != 0 || k.QueueDropped != 0 || k.UserDropped != 0 {
			t.Errorf("queue %d: %d waiting, %d dropped (queue full), %d dropped (socket full); want none", k.Num, k.Waiting, k.QueueDropped, k.UserDropped)
		}
	}
	if queued == 0 || queued != answered || kernelQueued != queued {
		t.Errorf("kernel queued %d packets, fwd received %d and answered %d; want all equal and not 0", kernelQueued, queued, answered)
	}

	// Every connection consistent with A or B.
	epochs[len(epochs)-1].till = time.Now()
	var total, timed, pass22 int
	for _, ps := range results {
		for _, p := range ps {
			total++
			switch {
			case p.err != nil:
				t.Errorf("%s port %d: %v, want a pass or a silent drop", p.host, p.port, p.err)
			case p.port == 22 && (!p.passed || p.retrans != 0):
				t.Errorf("%s port 22 (both tables allow it): passed %v after %d SYN retransmissions, want it through on the first SYN", p.host, p.passed, p.retrans)
			case p.port == 22:
				pass22++
			case p.port == 443 && p.passed:
				t.Errorf("%s port 443 passed: neither valid table allows it (the bad file's rule was applied?)", p.host)
			case p.passed:
				for _, ep := range epochs {
					if !p.start.Before(ep.from) && !p.end.After(ep.till) {
						timed++
						if !slices.Contains(stormAllows(ep.table), p.port) {
							t.Errorf("%s port %d passed while table %s, which drops it, was live", p.host, p.port, ep.table)
						}
					}
				}
			}
		}
	}
	if pass22 == 0 {
		t.Errorf("no client connection to 22 during the storm (%d probes)", total)
	}
	t.Logf("%d reloads (%d ok, %d failed), %d client connections (%d to 22, %d passes to 80/8080 within one table's time), %d packets queued",
		ok+failed, ok, failed, total, pass22, timed, queued)
}

// TestKill9DuringEdits: fwd killed with SIGKILL in the middle of a burst
// of fwctl allow calls leaves a rules file that validates and holds every
// acknowledged edit (comments kept); fwd restarts on it with the
// acknowledged ports open, and edits work again.
func TestKill9DuringEdits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := e.writeRules("rules.yaml", `# edited while fwd is killed
version: 1
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [any]} # stays
`)
	args := []string{"--rules", path, "--queues", "1"}
	f := e.startFwd(args...)
	const edits, killAfter, workers = 30, 15, 4
	type ack struct {
		port int
		r    ctlResult
	}
	ports := make(chan int, edits)
	for i := range edits {
		ports <- 10001 + i
	}
	close(ports)
	acks := make(chan ack, edits)
	bin := fwctlBin(t)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for p := range ports {
				acks <- ack{p, runFwctl(bin, nil, "--socket", e.socket(), "allow", fmt.Sprintf("%d/tcp", p))}
			}
		})
	}
	go func() { wg.Wait(); close(acks) }()
	var acked, refused []int
	for a := range acks {
		switch a.r.code {
		case 0:
			acked = append(acked, a.port)
			if !strings.Contains(a.r.stdout, fmt.Sprintf("Rule added: tcp %d from any", a.port)) {
				t.Errorf("%s\nwant the rule reported added", a.r)
			}
			if len(acked) == killAfter {
				f.kill9()
			}
		case 3: // daemon unreachable: killed before or while answering
			refused = append(refused, a.port)
		default:
			t.Errorf("%s\nwant exit 0 or 3 (unreachable)", a.r)
		}
	}
	if len(acked) < killAfter || len(refused) == 0 {
		t.Fatalf("%d edits acknowledged, %d unreachable; want the kill in the middle", len(acked), len(refused))
	}

	if r := runFwctl(bin, nil, "validate", path); r.code != 0 {
		t.Errorf("the rules file after kill -9 does not validate:\n%s", r)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# edited while fwd is killed\n") || !strings.Contains(string(data), "# stays") {
		t.Errorf("comments lost:\n%s", data)
	}
	got := ingressTexts(t, path, "local")
	for _, p := range acked {
		if !slices.Contains(got, fmt.Sprintf("tcp %d from any", p)) {
			t.Errorf("acknowledged allow %d/tcp is not in the rules file:\n%s", p, data)
		}
	}
	// Left-over temp files (a write killed before its rename) must not
	// get in the way of a restart or of the next edit.
	left, _ := filepath.Glob(filepath.Join(e.dir, ".rules.yaml.tmp-*"))
	t.Logf("%d acknowledged, %d unreachable, %d rules in group local, %d temp files left", len(acked), len(refused), len(got), len(left))

	e.startFwd(args...)
	if st := e.status(); st.Hash != fmt.Sprintf("%x", sha256.Sum256(data)) {
		t.Errorf("restarted fwd's hash %.12s is not the rules file's", st.Hash)
	}
	for _, p := range append(acked, 10100) {
		ln := listenIn(t, e.server, "tcp", fmt.Sprintf(":%d", p))
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.Copy(io.Discard, c)
				c.Close()
			}
		}()
	}
	var checks []func()
	for i, p := range acked {
		host := []string{server4, server6}[i%2]
		checks = append(checks, func() {
			c, err := dialIn(e.client, "tcp", "", net.JoinHostPort(host, strconv.Itoa(p)), 3*time.Second)
			if err != nil {
				t.Errorf("acknowledged port %d on %s after the restart: %v, want it open", p, host, err)
				return
			}
			c.Close()
		})
	}
	checks = append(checks, func() {
		c, err := dialIn(e.client, "tcp", "", net.JoinHostPort(server4, "10100"), time.Second)
		if err == nil {
			c.Close()
			t.Errorf("port 10100 passed before any rule allowed it")
		}
	})
	parallel(checks...)
	e.mustFwctl("allow", "10100/tcp")
	c, err := dialIn(e.client, "tcp", "", net.JoinHostPort(server6, "10100"), 3*time.Second)
	if err != nil {
		t.Errorf("port 10100 after fwctl allow on the restarted fwd: %v", err)
	} else {
		c.Close()
	}
}
