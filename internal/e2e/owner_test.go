package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// exitOrRun waits until f exits (true) or says it runs (false).
func (f *fwd) exitOrRun() (exited bool) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-f.done:
			return true
		default:
		}
		if strings.Contains(f.log(), "msg=\"fwd running\"") {
			return false
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("fwd neither exited nor ran:\n%s", f.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSecondFwdRefused (issue 16): a second fwd in the same namespace, on
// other queues and another control socket, refuses to start, names the
// first one's pid and exits non-zero without touching the rules: the first
// one's filtering stays whole.
func TestSecondFwdRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	f := e.startFwd("--rules", defaultRules(), "--queues", "2")
	running := iptablesSave(t, e.server)

	second := e.launchFwd("--rules", defaultRules(), "--queues", "1", "--queue-num", "4",
		"--socket", filepath.Join(e.dir, "second.sock"))
	if !second.exitOrRun() {
		t.Errorf("a second fwd started in the same namespace:\n%s", second.log())
		second.signal(syscall.SIGTERM) // its clean stop is what removed the first one's rules
		<-second.done
	}
	if second.err == nil {
		t.Errorf("second fwd exited 0, want non-zero:\n%s", second.log())
	}
	log := second.log()
	for _, want := range []string{"another fwd owns this network namespace", fmt.Sprintf("pid %d", f.cmd.Process.Pid)} {
		if !strings.Contains(log, want) {
			t.Errorf("second fwd's message lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "kernel rules") {
		t.Errorf("second fwd touched the kernel rules:\n%s", log)
	}
	if now := iptablesSave(t, e.server); now != running {
		t.Errorf("rules after the second fwd:\n%s\nbefore:\n%s", now, running)
	}
	parallel(
		func() { e.mustDrop(url("http", server4, 8080), "") },
		func() { e.mustDrop(url("http", server6, 8080), "") },
		func() { e.mustPass(url("http", server4, 80), "") },
		func() { e.mustPass(url("https", server6, 443), "") },
	)
	if st := e.status(); st.Status != "active" {
		t.Errorf("first fwd's status %q, want active", st.Status)
	}
	f.stop()
}

// TestOwnerLockFreedByKill9: the namespace lock does not outlive a fwd
// killed with SIGKILL; the next fwd starts and filters.
func TestOwnerLockFreedByKill9(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	args := []string{"--rules", defaultRules(), "--queues", "2"}
	f := e.startFwd(args...)
	f.kill9()
	f2 := e.startFwd(args...)
	parallel(
		func() { e.mustDrop(url("http", server4, 8080), "") },
		func() { e.mustPass(url("http", server4, 80), "") },
	)
	// And the new one holds the lock in turn.
	third := e.launchFwd(append(args, "--socket", filepath.Join(e.dir, "third.sock"))...)
	if !third.exitOrRun() {
		t.Errorf("a fwd started beside the restarted one:\n%s", third.log())
		third.signal(syscall.SIGKILL)
	}
	f2.stop()
}

// TestRulesRestoredAfterTampering (issue 16): someone flushes fwd's chain
// or deletes its jump while fwd runs; fwd notices, puts its rules back as
// they were, counts it in status and says so in its log, and the denied
// port is denied again.
func TestRulesRestoredAfterTampering(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	f := e.startFwd("--rules", defaultRules(), "--queues", "2", "--reconcile-interval", "300ms")
	running := iptablesSave(t, e.server)
	tests := []struct {
		name    string
		cmds    [][]string
		restore string // an iptables-restore --noflush script
		host    string
		wantLog string
	}{
		{
			name:    "ipv4 chain flushed",
			cmds:    [][]string{{"iptables", "-F", "FWD-INPUT"}},
			host:    server4,
			wantLog: "ipv4 filter: rule missing: -A FWD-INPUT -j NFQUEUE --queue-balance 0:1",
		},
		{
			name:    "ipv6 jump deleted",
			cmds:    [][]string{{"ip6tables", "-D", "INPUT", "-j", "FWD-INPUT"}},
			host:    server6,
			wantLog: "ipv6 filter: jump INPUT -> FWD-INPUT missing",
		},
		{
			// In one transaction, or fwd could repair between commands.
			name: "ipv4 everything removed, as another fwd's stop did",
			restore: "*security\n-D INPUT -j FWD-SAVE\n-D FORWARD -j FWD-SAVE\n-F FWD-SAVE\n-X FWD-SAVE\nCOMMIT\n" +
				"*mangle\n-D PREROUTING -j FWD-PREROUTING\n-F FWD-PREROUTING\n-X FWD-PREROUTING\nCOMMIT\n" +
				"*filter\n-D INPUT -j FWD-INPUT\n-F FWD-INPUT\n-X FWD-INPUT\n-D FORWARD -j FWD-FORWARD\n-D DOCKER-USER -j FWD-FORWARD\n-F FWD-FORWARD\n-X FWD-FORWARD\nCOMMIT\n",
			host:    server4,
			wantLog: "ipv4 filter: chain FWD-INPUT missing",
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := counter(t, e.status(), "kernel_rules_restored")
			from := f.mark()
			for _, c := range tc.cmds {
				if out, err := inNS(e.server, c[0], c[1:]...); err != nil {
					t.Fatalf("%v: %v\n%s", c, err, out)
				}
			}
			if tc.restore != "" {
				cmd := exec.Command("ip", "netns", "exec", e.server, "iptables-restore", "--noflush")
				cmd.Stdin = strings.NewReader(tc.restore)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("iptables-restore: %v\n%s", err, out)
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for counter(t, e.status(), "kernel_rules_restored") == before {
				if time.Now().After(deadline) {
					t.Fatalf("fwd did not restore its rules:\n%s", f.log())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if line := f.waitLog(from, "kernel rules changed by someone else"); !strings.Contains(line, tc.wantLog) {
				t.Errorf("log line %q lacks %q", line, tc.wantLog)
			}
			f.waitLog(from, "kernel rules restored")
			if now := iptablesSave(t, e.server); now != running {
				t.Errorf("rules after the repair:\n%s\nas fwd installed them:\n%s", now, running)
			}
			parallel(
				func() { e.mustDrop(url("http", tc.host, 8080), "") },
				func() { e.mustPass(url("http", tc.host, 80), "") },
			)
			if got := counter(t, e.status(), "kernel_rules_restored"); got != uint64(i+1) {
				t.Errorf("kernel_rules_restored %d, want %d (one repair per change)", got, i+1)
			}
		})
	}
	if r := e.mustFwctl("status", "verbose"); !strings.Contains(r.stdout, fmt.Sprintf("kernel_rules_restored %d", len(tests))) {
		t.Errorf("fwctl status does not show the repairs:\n%s", r.stdout)
	}
	f.stop()
}
