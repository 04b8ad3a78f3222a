package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/nfq"
)

// Fault tests (issue 16, "Prove it, in CI"): what a crash, a bad rules
// path, a full disk, a broken iptables and an overrun queue socket do to
// fwd, in namespaces, each with an assertion that fails when fwd gets it
// wrong. Kill -9 between edits, a second fwd and someone flushing fwd's
// chains have tests of their own (TestKill9DuringEdits,
// TestKill9FailClosed, TestSecondFwdRefused,
// TestRulesRestoredAfterTampering).

// faultSeed is the seed of a randomized fault schedule: FWD_FAULT_SEED
// when set (to repeat a failed run), else a fresh one. Logged either way.
func faultSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("FWD_FAULT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FWD_FAULT_SEED=%q: %v", s, err)
		}
		t.Logf("seed %d (from FWD_FAULT_SEED)", n)
		return n
	}
	n := rand.Uint64()
	t.Logf("seed %d (set FWD_FAULT_SEED=%d to repeat this schedule)", n, n)
	return n
}

// reachFrom tries a TCP connection from the current namespace: passed is
// true when the SYN got through the firewall (the handshake completed,
// or the server's kernel answered with a reset because nothing listens),
// false when it timed out (a silent drop).
func reachFrom(host string, port int, timeout time.Duration) (passed bool, err error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), timeout)
	if err == nil {
		c.Close()
		return true, nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, nil
	}
	return false, err
}

// reach is reachFrom run in the client namespace.
func (e *env) reach(host string, port int, timeout time.Duration) (passed bool, err error) {
	derr := do(e.client, func() error { passed, err = reachFrom(host, port, timeout); return nil })
	return passed, errors.Join(derr, err)
}

// mustReach wants a connection to host:port to get through (want true) or
// be dropped silently (want false).
func (e *env) mustReach(host string, port int, want bool) {
	e.t.Helper()
	timeout := time.Second // enough for a drop to be a drop
	if want {
		timeout = 10 * time.Second // room for SYN retransmissions
	}
	passed, err := e.reach(host, port, timeout)
	switch {
	case err != nil:
		e.t.Errorf("connect %s port %d: %v, want a pass or a silent drop", host, port, err)
	case passed != want:
		e.t.Errorf("connect %s port %d: passed %v, want %v", host, port, passed, want)
	}
}

// sha256File is the hex sha256 of a file's bytes, as fwd reports it.
func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// tempsBeside lists the temporary files an edit of path may leave.
func tempsBeside(t *testing.T, path string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// editOp is one runtime edit of the kill -9 test: allow or delete one
// tcp port in group local.
type editOp struct {
	allow bool
	port  int
}

func (o editOp) args() []string {
	if o.allow {
		return []string{"allow", fmt.Sprintf("%d/tcp", o.port)}
	}
	return []string{"delete", "allow", fmt.Sprintf("%d/tcp", o.port)}
}

func (o editOp) String() string { return strings.Join(o.args(), " ") }

// editModel is what group local holds: ports in the order they were
// allowed. next returns the edit that follows: delete the oldest port when
// two are open, else allow a new one; so the ports open change all the
// time and stay few.
type editModel struct {
	ports    []int
	nextPort int
}

func (m *editModel) next() editOp {
	if len(m.ports) >= 2 {
		return editOp{allow: false, port: m.ports[0]}
	}
	return editOp{allow: true, port: m.nextPort}
}

func (m *editModel) apply(o editOp) {
	if o.allow {
		m.ports = append(m.ports, o.port)
		m.nextPort = o.port + 1
		return
	}
	m.ports = slices.DeleteFunc(m.ports, func(p int) bool { return p == o.port })
}

// localPorts reads the tcp ports group local allows from the rules file,
// in file order; it fails the test when the file does not load.
func localPorts(t *testing.T, path string) []int {
	t.Helper()
	var ports []int
	for _, r := range ingressTexts(t, path, "local") {
		var p int
		if _, err := fmt.Sscanf(r, "tcp %d from any", &p); err != nil {
			t.Fatalf("group local holds %q, which no edit of this test made", r)
		}
		ports = append(ports, p)
	}
	return ports
}

// sameSet reports whether a and b hold the same ports.
func sameSet(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// editRound runs edits one after another from model's state, up to max,
// until one is not acknowledged (fwd was killed) or stop is closed. It
// returns the acknowledged edits and the first one that was not, if any:
// that one may or may not have reached the file before the kill.
func (e *env) editRound(bin string, model editModel, max int, stop <-chan struct{}, acked chan<- editOp) (inflight *editOp, failure string) {
	defer close(acked)
	for range max {
		select {
		case <-stop:
			return nil, ""
		default:
		}
		op := model.next()
		r := runFwctl(bin, nil, append([]string{"--socket", e.socket()}, op.args()...)...)
		switch {
		case r.code == 0:
			want := "Rule added: tcp " + strconv.Itoa(op.port)
			if !op.allow {
				want = "Rule deleted: tcp " + strconv.Itoa(op.port)
			}
			if !strings.Contains(r.stdout, want) {
				return nil, fmt.Sprintf("%s\nwant %q", r, want)
			}
			model.apply(op)
			acked <- op
		case r.code == 3: // unreachable: fwd was killed before or while answering
			return &op, ""
		default:
			return &op, fmt.Sprintf("%s\nwant exit 0, or 3 once fwd is killed", r)
		}
	}
	<-stop
	return nil, ""
}

// TestFaultKill9DuringTrafficAndEdits (issue 16): five rounds, on a seeded
// random schedule, of starting fwd, running clients and a stream of fwctl
// edits (allow and delete), and killing fwd with SIGKILL at a random
// moment. The clients run the whole time, across kills and restarts:
// 8080, which no rule allows, never passes (no window without
// filtering). While fwd is down and after each restart: its kernel rules
// are there exactly once (iptables-save as after the first start), the
// rules file validates and holds every acknowledged edit (and the one in
// flight at most), no temporary file is left after the restart, the live
// hash is the file's, the ports the file allows pass and the last one
// deleted is dropped, and every established connection opened before a
// kill (one per round, over both families, the first one kept through
// all five kills) still carries requests: conntrack ESTABLISHED is
// accepted before the queue, so fail-closed drops only new connections
// (README, "Fail-closed and fail-open").
func TestFaultKill9DuringTrafficAndEdits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	e.addHostRules()
	rng := rand.New(rand.NewPCG(faultSeed(t), 16))
	before := iptablesSave(t, e.server)
	path := e.writeRules("rules.yaml", `# kill -9 during traffic and edits
version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [22, 80], from: [any]} # stays
`)
	args := []string{"--rules", path, "--queues", "2"}
	bin := fwctlBin(t)

	f := e.startFwd(args...)
	running := iptablesSave(t, e.server)
	for _, want := range []string{"-A INPUT -j FWD-INPUT", ":FWD-INPUT -", "-A INPUT -j FWD-SAVE"} {
		if n := strings.Count(running, want+"\n"); n != 2 {
			t.Fatalf("after the first start %q appears %d times, want once per family:\n%s", want, n, running)
		}
	}
	// Clients, from the first start to the end: 80 from both families (counted), and
	// 8080, which must never pass.
	var pass80, probes8080 atomic.Uint64
	var leaks []string
	var leaksMu sync.Mutex
	stopClients := make(chan struct{})
	var clients sync.WaitGroup
	for _, host := range []string{server4, server6} {
		clients.Go(func() {
			err := do(e.client, func() error {
				deadline := time.Now().Add(4 * time.Minute)
				for time.Now().Before(deadline) {
					select {
					case <-stopClients:
						return nil
					default:
					}
					if ok, _ := reachFrom(host, 80, 500*time.Millisecond); ok {
						pass80.Add(1)
					}
					ok, err := reachFrom(host, 8080, 150*time.Millisecond)
					probes8080.Add(1)
					if ok || err != nil {
						leaksMu.Lock()
						leaks = append(leaks, fmt.Sprintf("%s port 8080 at %s: passed %v, err %v", host, time.Now().Format("15:04:05.000"), ok, err))
						leaksMu.Unlock()
					}
				}
				return nil
			})
			if err != nil {
				t.Errorf("client %s: %v", host, err)
			}
		})
	}
	defer func() { // also on a Fatal: the clients use the namespace
		select {
		case <-stopClients:
		default:
			close(stopClients)
		}
		clients.Wait()
	}()

	model := editModel{nextPort: 10001}
	var established []*httpConn
	var lastDeleted int
	const rounds, maxEdits = 5, 200
	for round := range rounds {
		// An established connection of this round, opened before the kill.
		fam, host := "tcp4", server4
		if round%2 == 1 {
			fam, host = "tcp6", server6
		}
		established = append(established, e.openHTTP(fam, host, 80))

		// Edits, one after another, until the kill.
		stopEdits := make(chan struct{})
		acked := make(chan editOp, maxEdits)
		type outcome struct {
			inflight *editOp
			failure  string
		}
		done := make(chan outcome, 1)
		go func() {
			in, fail := e.editRound(bin, editModel{ports: slices.Clone(model.ports), nextPort: model.nextPort}, maxEdits, stopEdits, acked)
			done <- outcome{in, fail}
		}()
		// Kill at a random moment once traffic and edits are under way.
		p0 := pass80.Load()
		deadline := time.Now().Add(20 * time.Second)
		var first editOp
		select {
		case first = <-acked:
		case <-time.After(20 * time.Second):
			close(stopEdits)
			t.Fatalf("round %d: no edit acknowledged in 20 s", round)
		}
		for pass80.Load() == p0 {
			if time.Now().After(deadline) {
				close(stopEdits)
				t.Fatalf("round %d: no client connection to port 80 passed in 20 s", round)
			}
			time.Sleep(10 * time.Millisecond)
		}
		delay := time.Duration(rng.Int64N(int64(time.Second)))
		time.Sleep(delay)
		f.kill9()
		close(stopEdits)
		out := <-done
		if out.failure != "" {
			t.Fatalf("round %d: %s", round, out.failure)
		}
		ackedOps := []editOp{first}
		for op := range acked {
			ackedOps = append(ackedOps, op)
		}
		for _, op := range ackedOps {
			model.apply(op)
			if !op.allow {
				lastDeleted = op.port
			}
		}
		inflight := "none"
		if out.inflight != nil {
			inflight = out.inflight.String()
		}
		t.Logf("round %d: killed %v after the first acknowledged edit: %d edits acknowledged, in flight: %s", round, delay.Round(time.Millisecond), len(ackedOps), inflight)

		// fwd is down: its rules stay, established connections carry on.
		if now := iptablesSave(t, e.server); now != running {
			t.Errorf("round %d: kernel rules after kill -9:\n%s\nas installed:\n%s", round, now, running)
		}
		for i, h := range established {
			if err := h.get(); err != nil {
				t.Errorf("round %d, fwd down: established connection %d: %v", round, i, err)
			}
		}
		// The file: valid, every acknowledged edit in it, the edit in
		// flight in it or not.
		if r := runFwctl(bin, nil, "validate", path); r.code != 0 {
			t.Fatalf("round %d: the rules file after kill -9 does not validate:\n%s", round, r)
		}
		got := localPorts(t, path)
		ok := sameSet(got, model.ports)
		if !ok && out.inflight != nil {
			with := model
			with.ports = slices.Clone(model.ports)
			with.apply(*out.inflight)
			if ok = sameSet(got, with.ports); ok {
				t.Logf("round %d: the edit in flight (%s) reached the file", round, inflight)
				model = with
				if !out.inflight.allow {
					lastDeleted = out.inflight.port
				}
			}
		}
		if !ok {
			t.Fatalf("round %d: group local allows tcp %v, want %v (every acknowledged edit, and the one in flight at most: %s)", round, got, model.ports, inflight)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "# kill -9 during traffic and edits\n") || !strings.Contains(string(data), "# stays") {
			t.Errorf("round %d: the file's comments were lost:\n%s", round, data)
		}

		// Restart.
		f = e.startFwd(args...)
		now := iptablesSave(t, e.server)
		if now != running {
			t.Errorf("round %d: kernel rules after the restart (want exactly one copy, as after the first start):\n%s\nafter the first start:\n%s", round, now, running)
		}
		if left := tempsBeside(t, path); len(left) != 0 {
			t.Errorf("round %d: temporary files left after the restart: %v", round, left)
		}
		if st := e.status(); st.Hash != sha256File(t, path) {
			t.Errorf("round %d: restarted fwd's hash %.12s is not the rules file's", round, st.Hash)
		}
		checks := []func(){func() {
			for i, h := range established {
				if err := h.get(); err != nil {
					t.Errorf("round %d, after the restart: established connection %d: %v", round, i, err)
				}
			}
		}}
		for i, p := range model.ports {
			checks = append(checks, func() { e.mustReach([]string{server4, server6}[(i+round)%2], p, true) })
		}
		if lastDeleted != 0 {
			checks = append(checks, func() { e.mustReach([]string{server6, server4}[round%2], lastDeleted, false) })
		}
		parallel(checks...)
		if t.Failed() {
			t.FailNow()
		}
	}
	close(stopClients)
	clients.Wait()
	f.stop()
	if after := iptablesSave(t, e.server); after != before {
		t.Errorf("tables after a clean stop:\n%s\nbefore start:\n%s", after, before)
	}
	if len(leaks) > 0 {
		t.Errorf("%d of %d connections to 8080, which no rule allows, did not time out:\n%s", len(leaks), probes8080.Load(), strings.Join(leaks, "\n"))
	}
	if pass80.Load() == 0 {
		t.Error("no client connection to port 80 passed")
	}
	t.Logf("%d rounds; clients: %d connections to 80 passed, %d to 8080 all dropped; group local ends with %v", rounds, pass80.Load(), probes8080.Load(), model.ports)
}

// reloadJSON runs fwctl reload -o json and decodes its error, if any.
func (e *env) reloadJSON() (ctlResult, *control.Error) {
	e.t.Helper()
	r := e.fwctl("reload", "-o", "json")
	if r.code != 1 {
		return r, nil
	}
	var body struct {
		Error *control.Error `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &body); err != nil {
		e.t.Errorf("fwctl reload -o json: %v\n%s", err, r)
	}
	return r, body.Error
}

// TestFaultRulesFileUnreadable (issue 16): while fwd runs, the rules file
// is replaced by what cannot be loaded: a directory, a FIFO, a symlink to
// /dev/zero, a symlink loop, binary garbage, nothing (deleted), a file
// over --max-file-bytes. (chmod 000 is no fault for root.) Each time,
// fwctl reload fails at once with exit 1 and an error code that says
// what happened (read_failed, or invalid_rules with file:line:col for
// garbage), SIGHUP logs the same failure, fwctl allow fails and leaves
// the path as it was, fwctl status still answers and counts the
// failures, and the running table is unchanged: its hash, 80 passes, 8080
// is dropped. A good file then reloads; and fwd stops on SIGTERM right
// after a failed reload of a FIFO (which wedged fwd before issue 16).
func TestFaultRulesFileUnreadable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	good := `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [22, 80], from: [any]}
`
	path := e.writeRules("rules.yaml", good)
	const maxBytes = 64 << 10
	f := e.startFwd("--rules", path, "--queues", "1", "--max-file-bytes", strconv.Itoa(maxBytes))
	hash := e.status().Hash
	other := filepath.Join(e.dir, "loop")

	tests := []struct {
		name string
		make func() error
		code control.Code
		want string // in the error message
		mode os.FileMode
	}{
		{"directory", func() error { return os.Mkdir(path, 0o755) }, control.CodeReadFailed, "is a directory, not a regular file", os.ModeDir},
		{"fifo", func() error { return unix.Mkfifo(path, 0o644) }, control.CodeReadFailed, "is a named pipe (FIFO), not a regular file", os.ModeNamedPipe},
		{"symlink to /dev/zero", func() error { return os.Symlink("/dev/zero", path) }, control.CodeReadFailed, "is a character device", os.ModeSymlink},
		{"symlink loop", func() error {
			os.Remove(other)
			if err := os.Symlink(path, other); err != nil {
				return err
			}
			return os.Symlink(other, path)
		}, control.CodeReadFailed, "too many levels of symbolic links", os.ModeSymlink},
		{"garbage", func() error {
			return os.WriteFile(path, []byte("version: 1\n\x00\xff\xfe\x01\x7f binary\n"), 0o644)
		}, control.CodeInvalidRules, "rules.yaml:2:1: YAML syntax: NUL byte", 0},
		{"deleted", func() error { return nil }, control.CodeReadFailed, "no such file or directory", 0},
		{"over --max-file-bytes", func() error {
			big := good + strings.Repeat("# padding to go over the limit\n", 2*maxBytes/31)
			return os.WriteFile(path, []byte(big), 0o644)
		}, control.CodeReadFailed, fmt.Sprintf("over the limit of %d bytes for a rules file", maxBytes), 0},
	}
	failed := e.status().Reloads.Failed
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.RemoveAll(path); err != nil {
				t.Fatal(err)
			}
			if err := tc.make(); err != nil {
				t.Fatal(err)
			}
			// fwctl reload: bounded (runFwctl gives up after 30 s with
			// code -1), exit 1, the error code and message.
			r, ae := e.reloadJSON()
			if r.code != 1 || ae == nil {
				t.Fatalf("%s\nwant exit 1 with an error", r)
			}
			if ae.Code != tc.code || !strings.Contains(ae.Message+strings.Join(ae.Details, "\n"), tc.want) {
				t.Errorf("fwctl reload: error %s %q %q, want %s naming %q", ae.Code, ae.Message, ae.Details, tc.code, tc.want)
			}
			// SIGHUP: the same failure, in the log.
			line := f.reload("reload failed")
			if !strings.Contains(line, tc.want) {
				t.Errorf("SIGHUP: log line %q lacks %q", line, tc.want)
			}
			// An edit cannot read the file either, and leaves the path be.
			if r := e.fwctl("allow", "8080/tcp"); r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%s\nwant exit 1 naming %q", r, tc.want)
			}
			if tc.name == "deleted" {
				if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after a failed edit of a deleted rules file, the path holds something (%v)", err)
				}
			} else if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != tc.mode {
				t.Errorf("after a failed edit, the path is %v (%v), want it left as it was (%v)", fi.Mode().Type(), err, tc.mode)
			}
			// The control plane answers; the table is the one before.
			st := e.status()
			if st.Hash != hash || st.Status != "active" {
				t.Errorf("status %s with hash %.12s, want active with the running %.12s", st.Status, st.Hash, hash)
			}
			if st.Reloads.Failed != failed+3 {
				t.Errorf("%d reloads failed, want %d (+3: fwctl reload, SIGHUP, fwctl allow)", st.Reloads.Failed, failed+3)
			}
			failed = st.Reloads.Failed
			if le := st.Reloads.LastError; le == nil || le.Code != tc.code {
				t.Errorf("status: last error %+v, want code %s", le, tc.code)
			}
			parallel(
				func() { e.mustPass(url("http", server4, 80), "") },
				func() { e.mustDrop(url("http", server4, 8080), "") },
				func() { e.mustDrop(url("http", server6, 8080), "") },
			)
		})
	}

	// A good file again: the reload works.
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, path, strings.Replace(good, "[22, 80]", "[22, 80, 8080]", 1))
	e.mustFwctl("reload")
	parallel(
		func() { e.mustPass(url("http", server4, 8080), "") },
		func() { e.mustPass(url("http", server6, 8080), "") },
	)
	// A FIFO once more, then SIGTERM: fwd stops (before issue 16 the
	// reload blocked in open(2) for good and the signal loop with it).
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f.reload("reload failed")
	f.stop()
}

// TestFaultDiskFullDuringEdit (issue 16): the rules file sits on a 64 KiB
// tmpfs that is then filled. fwctl allow and fwctl delete fail (exit 1,
// no space left, write_failed in status), and change nothing: the file
// is byte-identical, no temporary file is left beside it, the live hash
// and what passes are the same (8080 still dropped, 443 still open).
// With space again the same edit works.
func TestFaultDiskFullDuringEdit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	dir := filepath.Join(e.dir, "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "fwd-e2e-full", dir)
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	path := filepath.Join(dir, "rules.yaml")
	body := `# on a small disk
version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [22, 80], from: [any]}
      - {proto: tcp, ports: 443, from: [any]}
`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// Started after the mount: ip netns exec gives fwd a copy of our
	// mounts.
	e.startFwd("--rules", path, "--queues", "1")
	hash := e.status().Hash

	filler := filepath.Join(dir, "filler")
	fill, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for i := 0; ; i++ {
		if _, err = fill.Write(chunk); err != nil {
			break
		}
		if i > 1024 {
			t.Fatal("wrote 4 MiB to a 64 KiB tmpfs without an error")
		}
	}
	fill.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v, want ENOSPC", err)
	}

	for _, args := range [][]string{{"allow", "8080/tcp"}, {"delete", "allow", "443/tcp"}} {
		r := e.fwctl(args...)
		if r.code != 1 || !strings.Contains(r.stderr, "no space left on device") || !strings.Contains(r.stderr, "nothing changed") {
			t.Errorf("%s\nwant exit 1: no space left on device, nothing changed", r)
		}
		if data, err := os.ReadFile(path); err != nil || string(data) != body {
			t.Errorf("the rules file after a failed %v (%v):\n%s\nwant it byte-identical:\n%s", args, err, data, body)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range ents {
			if d.Name() != "rules.yaml.history" { // the change journal, kept beside the file
				names = append(names, d.Name())
			}
		}
		if !slices.Equal(names, []string{"filler", "rules.yaml"}) {
			t.Errorf("after a failed %v the directory holds %q, want only filler and rules.yaml (and the history)", args, names)
		}
		st := e.status()
		if st.Hash != hash {
			t.Errorf("after a failed %v the live hash is %.12s, want %.12s", args, st.Hash, hash)
		}
		if le := st.Reloads.LastError; le == nil || le.Code != control.CodeWriteFailed {
			t.Errorf("status: last error %+v, want write_failed", le)
		}
	}
	parallel(
		func() { e.mustDrop(url("http", server4, 8080), "") },
		func() { e.mustDrop(url("http", server6, 8080), "") },
		func() { e.mustPass(url("https", server4, 443), "") },
		func() { e.mustPass(url("https", server6, 443), "") },
	)

	// Space again: the edit goes through.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	e.mustFwctl("allow", "8080/tcp")
	e.mustPass(url("http", server4, 8080), "")
	if got := ingressTexts(t, path, "local"); !slices.Equal(got, []string{"tcp 8080 from any"}) {
		t.Errorf("group local after the edit with space: %q", got)
	}
}

// iptablesPath makes a directory to be fwd's PATH: the real iptables
// tools, except the ones in fake (name → shell script) and in missing.
func iptablesPath(t *testing.T, fake map[string]string, missing ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range []string{"iptables-save", "ip6tables-save", "iptables-restore", "ip6tables-restore"} {
		p := filepath.Join(dir, tool)
		switch script, ok := fake[tool]; {
		case slices.Contains(missing, tool):
		case ok:
			if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			real, err := exec.LookPath(tool)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestFaultIptablesFailsOnStart (issue 16): fwd started with an iptables
// that is missing or fails, for either family, exits 1 at once with a
// message that names the tool and why, and leaves nothing half-installed:
// iptables-save and ip6tables-save are as before the start (when IPv4
// went in and IPv6 failed, the IPv4 rules are taken out again), with no
// FWD chain or jump, and no control socket. A fwd with the real tools
// then starts and filters.
func TestFaultIptablesFailsOnStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	e.addHostRules()
	before := iptablesSave(t, e.server)
	fails := "while read -r line; do :; done\necho 'injected failure: table busy' >&2\nexit 1\n"
	tests := []struct {
		name    string
		fake    map[string]string
		missing []string
		want    []string
	}{
		{"iptables-restore missing", nil, []string{"iptables-restore"},
			[]string{"install ipv4 rules", "iptables-restore", "executable file not found"}},
		{"ip6tables-restore missing", nil, []string{"ip6tables-restore"},
			[]string{"install ipv6 rules", "ip6tables-restore", "executable file not found"}},
		{"iptables-restore fails", map[string]string{"iptables-restore": fails}, nil,
			[]string{"install ipv4 rules", "iptables-restore: exit status 1: injected failure: table busy"}},
		{"ip6tables-restore fails", map[string]string{"ip6tables-restore": fails}, nil,
			[]string{"install ipv6 rules", "ip6tables-restore: exit status 1: injected failure: table busy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := iptablesPath(t, tc.fake, tc.missing...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sock := filepath.Join(e.dir, "failed.sock")
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.server, "env", "PATH="+dir,
				fwdBin, "--rules", defaultRules(), "--queues", "2", "--socket", sock)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("fwd did not exit within a minute:\n%s", out)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Errorf("fwd exit: %v, want status 1\n%s", err, out)
			}
			for _, w := range append([]string{"cannot start"}, tc.want...) {
				if !strings.Contains(string(out), w) {
					t.Errorf("fwd's output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "fwd running") {
				t.Errorf("fwd said it runs:\n%s", out)
			}
			after := iptablesSave(t, e.server)
			if after != before {
				t.Errorf("tables after the failed start:\n%s\nbefore:\n%s", after, before)
			}
			if strings.Contains(after, "FWD") {
				t.Errorf("FWD chains or jumps left after the failed start:\n%s", after)
			}
			if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("control socket %s left behind (%v)", sock, err)
			}
		})
	}
	f := e.startFwd("--rules", defaultRules(), "--queues", "2")
	parallel(
		func() { e.mustPass(url("http", server4, 80), "") },
		func() { e.mustDrop(url("http", server6, 8080), "") },
	)
	f.stop()
	if after := iptablesSave(t, e.server); after != before {
		t.Errorf("tables after a clean stop:\n%s\nbefore start:\n%s", after, before)
	}
}

// TestFaultQueueSocketOverrun (issue 16): fwd stalls (SIGSTOP) while a
// flood of new flows arrives, with a kernel queue longer than its socket
// buffer holds, so that the queue's netlink socket overruns and the
// kernel drops what it cannot deliver (user_dropped; TestOverload's small
// queue overflows the queue instead). Once fwd runs again it answers:
// every packet the kernel delivered is judged and the queue drains, its
// counters show the socket drops, nothing denied got through, fwctl
// status and reload answer, a new allowed connection passes through the
// queue and a denied one is dropped; SIGTERM stops it.
func TestFaultQueueSocketOverrun(t *testing.T) {
	e := newEnv(t)
	rules := e.writeRules("rules.yaml", overloadRules)
	f := e.startFwd("--rules", rules, "--queues", "1", "--queue-maxlen", "1000000")
	denied := ovlCountUDP(t, e.server, server4+":5354")
	k0 := e.ovlKernel()

	f.signal(syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped { // a Fatal below: let the cleanup's kill find it running
			f.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	fl := e.startFlood(5354)
	k1 := e.ovlWait("the queue's socket to overrun (user_dropped)", 45*time.Second,
		func(k nfq.KernelStats) bool { return k.UserDropped > k0.UserDropped })
	sent, err := fl.stop()
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	if k1.Waiting == 0 {
		t.Fatalf("no packet waits for the stopped fwd: %+v", k1)
	}
	f.signal(syscall.SIGCONT)
	stopped = false

	k := e.ovlDrained()
	c := e.ovlCounters()
	t.Logf("flood: %d sent; kernel: %d queued, %d socket-full, %d queue-full, %d waited for the stopped fwd; counters %v",
		sent, k.IDSequence, k.UserDropped, k.QueueDropped, k1.Waiting, c)
	ovlAnsweredAll(t, k, c)
	if c["kernel_user_dropped"] != k.UserDropped {
		t.Errorf("fwd counts kernel_user_dropped=%d, the kernel %d", c["kernel_user_dropped"], k.UserDropped)
	}
	if n := denied.Load(); n != 0 {
		t.Errorf("%d flood packets to a port no rule allows reached the server", n)
	}

	// The control plane and the queue answer.
	st := e.status()
	if st.Status != "active" {
		t.Errorf("status %q after the overrun, want active", st.Status)
	}
	if r := e.mustFwctl("reload"); !strings.Contains(r.stdout, "unchanged") {
		t.Errorf("%s\nwant the unchanged rules reloaded as a no-op", r)
	}
	accepted := c["accepted"]
	ln := listenIn(t, e.server, "tcp", ":9000")
	echoServe(ln)
	echo(t, e.client, net.JoinHostPort(server4, "9000"), true)
	echo(t, e.client, net.JoinHostPort(server6, "9000"), true)
	e.mustReach(server4, 9001, false)
	if got := e.ovlCounters()["accepted"]; got < accepted+2 {
		t.Errorf("accepted %d after two new allowed connections, want at least %d: they did not go through the queue", got, accepted+2)
	}
	f.stop()
}
