package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/control"
)

// TestFail2Ban runs Debian's fail2ban-server, in the foreground in the
// server namespace with a private configuration (the sshd filter it
// ships, the action packaging/fail2ban/fwd.conf or fwd-multiport.conf,
// given the port and protocol as a jail's default action gives them), on an auth log the
// test writes failed-password lines into. Three failures from the
// client's address get it banned through fwctl: its next connection is
// dropped and its established one cut, another address still connects;
// after the ban time fail2ban unbans it and it connects again.
func TestFail2Ban(t *testing.T) {
	t.Parallel()
	t.Run("fwd", func(t *testing.T) { t.Parallel(); testFail2Ban(t, "fwd") })
	t.Run("fwd-multiport", func(t *testing.T) { t.Parallel(); testFail2Ban(t, "fwd-multiport") })
}

// testFail2Ban runs the jail with one of the two actions: fwd bans every
// protocol and port, fwd-multiport only the jail's port (7000 here): the
// banned address still reaches port 7001.
func testFail2Ban(t *testing.T, action string) {
	requireRoot(t)
	server, err := exec.LookPath("fail2ban-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("fail2ban-server missing (make deps installs it); CI=true forbids skipping")
		}
		t.Skip("fail2ban-server missing: make deps installs it")
	}
	e := newEnv(t)
	echoServe(listenIn(t, e.server, "tcp", ":7000"))
	echoServe(listenIn(t, e.server, "tcp", ":7001"))
	e.startFwd("--rules", e.writeRules("rules.yaml", aclRules+"      - {proto: tcp, ports: 7001, from: [any]}\n"))
	a := e.mustEcho(client4)
	b := e.mustEcho(client4b)

	other := e.dialEchoPort("7001")
	conf, authLog := e.fail2banConfig(t, action)
	cmd := exec.Command("ip", "netns", "exec", e.server, server, "-f", "-x", "-c", conf,
		"-s", filepath.Join(conf, "f2b.sock"), "-p", filepath.Join(conf, "f2b.pid"),
		"--logtarget", "stderr", "--loglevel", "INFO", "start")
	logs := &lineLog{}
	cmd.Stderr, cmd.Stdout = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("fail2ban log:\n%s", logs.String())
		}
	})
	logs.wait(t, "Jail 'fwdtest' started")

	for i := range 3 {
		line := fmt.Sprintf("%s server sshd[%d]: Failed password for root from %s port %d ssh2\n", time.Now().Format("Jan _2 15:04:05"), 1000+i, client4, 40000+i)
		appendFile(t, authLog, line)
	}
	banned := waitACL(e, func(acl []control.ACLInfo) bool { return len(acl) == 1 })
	wantProto, wantPorts := "all", ""
	if action == "fwd-multiport" {
		wantProto, wantPorts = "tcp", "7000"
	}
	if ai := banned[0]; ai.Action != "deny" || ai.Proto != wantProto || strings.Join(ai.Ports, ",") != wantPorts || strings.Join(ai.Peers, ",") != client4 || ai.Description != "fail2ban fwdtest" || ai.Expires == "" {
		t.Fatalf("acl entry %+v: want deny %s %s from %s, comment fail2ban fwdtest, with an expiry", ai, wantProto, wantPorts, client4)
	}
	// The ban cuts the banned address's connections once its entry is
	// live, a moment after the ACL lists it (the cut follows the swap).
	if !stopsEchoing(a, 10*time.Second) {
		t.Error("the banned address's established connection still echoes")
	}
	// The other port: cut with the rest by fwd (in the same pass), kept by
	// fwd-multiport.
	if err := other.roundTrip(); (err == nil) != (action == "fwd-multiport") {
		t.Errorf("%s: the banned address's connection to port 7001: %v", action, err)
	}
	e.mustNotConnect(client4)
	if err := b.roundTrip(); err != nil {
		t.Errorf("another address's established connection: %v", err)
	}
	e.mustEcho(client4b)

	waitACL(e, func(acl []control.ACLInfo) bool { return len(acl) == 0 })
	e.mustEcho(client4)
	logs.wait(t, "Unban "+client4)
}

// fail2banConfig writes a private fail2ban configuration directory: the
// Debian sshd filter, fwd's action with this test's socket and fwctl,
// one jail on an auth log in the test's directory.
func (e *env) fail2banConfig(t *testing.T, action string) (dir, authLog string) {
	dir = filepath.Join(e.dir, "fail2ban")
	authLog = filepath.Join(e.dir, "auth.log")
	for _, d := range []string{"action.d", "filter.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"fwd.conf", "fwd-multiport.conf"} {
		copyFile(t, filepath.Join(repoRoot, "packaging", "fail2ban", f), filepath.Join(dir, "action.d", f))
	}
	for _, f := range []string{"sshd.conf", "common.conf"} {
		copyFile(t, filepath.Join("/etc/fail2ban/filter.d", f), filepath.Join(dir, "filter.d", f))
	}
	writeFile(t, filepath.Join(dir, "fail2ban.conf"), "[Definition]\nloglevel = INFO\nlogtarget = STDERR\ndbfile = :memory:\n")
	writeFile(t, filepath.Join(dir, "jail.conf"), fmt.Sprintf(`[DEFAULT]
backend = polling
[fwdtest]
enabled = true
filter = sshd
logpath = %s
maxretry = 3
findtime = 600
bantime = 4
action = %s[socket="%s", fwctl="%s", port="7000", protocol="tcp"]
`, authLog, action, e.socket(), fwctlBin(t)))
	writeFile(t, authLog, "")
	return dir, authLog
}

// waitACL polls fwd's status until cond holds for its ACL (at most 30s).
func waitACL(e *env, cond func([]control.ACLInfo) bool) []control.ACLInfo {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := e.status()
		if cond(st.ACL) {
			return st.ACL
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("fwd's acl never became what the test waits for: %+v", st.ACL)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lineLog collects a process's output.
type lineLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lineLog) wait(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(l.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("fail2ban did not log %q", substr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	w.WriteString(text)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

// stopsEchoing reports whether ec stops answering within d.
func stopsEchoing(ec *echoConn, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for ec.roundTrip() == nil {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}
