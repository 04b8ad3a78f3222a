package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/control"
)

// Changing rules safely (issue 11): the lockout guard, the failsafe and
// confirmed changes, against a live fwd. The server's "sshd" is a Go
// listener on port 22; the admin is the client's first address.

// adminRules admit the admin's address (client4) to port 22, and 80 to
// everyone.
const adminRules = `version: 1
groups:
  - name: admin
    ingress:
      - {proto: tcp, ports: 22, from: [` + client4 + `/32]}
      - {proto: tcp, ports: 80, from: [any]}
`

// lockedRules remove the admin's port 22.
const lockedRules = `version: 1
groups:
  - name: admin
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
`

// sshConnection is the admin's session as sshd would set it.
const sshConnection = client4 + " 40022 " + server4 + " 22"

// fwctlAsAdmin runs fwctl as if from the admin's SSH session: with
// SSH_CONNECTION in its environment.
func (e *env) fwctlAsAdmin(args ...string) ctlResult {
	return runCtl(fwctlBin(e.t), append([]string{"--socket", e.socket()}, args...), func(cmd *exec.Cmd) {
		cmd.Env = append(os.Environ(), "SSH_CONNECTION="+sshConnection)
	})
}

// sshd listens on the server's port 22 (both families) and echoes.
func (e *env) sshd() {
	echoServeProcess(e.t, e.server, ":22")
}

// adminReach reports whether a new connection from src to the server's
// port 22 gets through: true on a handshake, false on a silent drop.
func (e *env) adminReach(src string) bool {
	e.t.Helper()
	timeout := 2 * time.Second
	c, err := dialIn(e.client, "tcp", src, net.JoinHostPort(server4, "22"), timeout)
	if err == nil {
		c.Close()
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	e.t.Fatalf("connect from %s to port 22: %v", src, err)
	return false
}

func (e *env) safety() *control.SafetyStatus {
	e.t.Helper()
	st := e.status()
	if st.Safety == nil {
		return &control.SafetyStatus{}
	}
	return st.Safety
}

func fileText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A confirmed change that drops the admin's next SSH connection is
// rolled back by fwd when no confirmation comes, and the admin's next
// connection works again; confirmed in time, it is kept.
func TestConfirmRollsBackLockout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.sshd()
	rulesPath := e.writeRules("rules.yaml", adminRules)
	locked := e.writeRules("locked.yaml", lockedRules)
	e.startFwd("--rules", rulesPath, "--queues", "1")
	if !e.adminReach(client4) {
		t.Fatal("the admin cannot connect before any change")
	}
	// The admin's session, open across the change: conntrack keeps it.
	session, err := dialIn(e.client, "tcp", client4, net.JoinHostPort(server4, "22"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()

	// fwctl runs from a console here (no SSH_CONNECTION): the guard only
	// warns, which is what a confirmed change is for.
	// The window is long enough for the checks below on a loaded machine.
	r := e.mustFwctl("apply", locked, "--confirm", "8s")
	if !strings.Contains(r.stdout, "Confirm with fwctl confirm by") {
		t.Errorf("apply --confirm says nothing of the confirmation:\n%s", r)
	}
	if p := e.safety().Pending; p == nil {
		t.Fatal("status shows no pending change")
	}
	if e.adminReach(client4) {
		t.Fatal("the change is not live: the admin still connects")
	}
	if r := e.fwctl("allow", "8080/tcp"); r.code != 1 || !strings.Contains(r.stderr, "a confirmed change is pending") {
		t.Errorf("a second change during the window:\n%s\nwant exit 1, confirm_pending", r)
	}
	if _, err := fmt.Fprintln(session, "still here"); err != nil {
		t.Errorf("the open session: %v", err)
	}
	// fwctl is long gone: fwd rolls back by itself.
	deadline := time.Now().Add(30 * time.Second)
	for e.safety().RolledBack == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no rollback 30s after an 8s window")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !e.adminReach(client4) {
		t.Error("after the rollback the admin still cannot connect")
	}
	if got := fileText(t, rulesPath); got != adminRules {
		t.Errorf("the rules file after the rollback:\n%s\nwant the previous one", got)
	}

	// Confirmed in time: kept, long past its window.
	e.mustFwctl("apply", locked, "--confirm", "6s")
	r = e.mustFwctl("confirm")
	if !strings.Contains(r.stdout, "Confirmed") {
		t.Errorf("confirm says:\n%s", r)
	}
	time.Sleep(7 * time.Second) // past the window
	st := e.safety()
	if st.RolledBack != 1 || st.Confirmed != 1 || st.Pending != nil {
		t.Errorf("status after the confirmation: %+v", st)
	}
	if e.adminReach(client4) {
		t.Error("the confirmed change was rolled back: the admin connects")
	}
	if got := fileText(t, rulesPath); got != lockedRules {
		t.Errorf("the rules file after the confirmation:\n%s", got)
	}
	if r := e.fwctl("confirm"); r.code != 1 {
		t.Errorf("confirm with nothing pending:\n%s\nwant exit 1", r)
	}

	// Rolled back at once, before its deadline: fwctl rollback, no entry.
	open := e.writeRules("open.yaml", adminRules)
	e.mustFwctl("apply", open, "--confirm", "1h")
	if !e.adminReach(client4) {
		t.Fatal("the change that reopens ssh is not live")
	}
	r = e.mustFwctl("rollback")
	if !strings.Contains(r.stdout, "Rolled back to the rules before the change pending confirmation") {
		t.Errorf("rollback says:\n%s", r)
	}
	if e.adminReach(client4) {
		t.Error("after fwctl rollback the admin still connects: the change is live")
	}
	if got := fileText(t, rulesPath); got != lockedRules {
		t.Errorf("the rules file after fwctl rollback:\n%s\nwant the one before the change", got)
	}
	if st := e.safety(); st.RolledBack != 2 || st.Pending != nil {
		t.Errorf("status after fwctl rollback: %+v", st)
	}
}

// fwctl run from the admin's SSH session refuses a change that would
// drop the admin's next SSH connection; --force makes it with a loud
// warning; the failsafe admits the admin whatever the rules.
func TestLockoutGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.sshd()
	rulesPath := e.writeRules("rules.yaml", adminRules)
	f := e.startFwd("--rules", rulesPath, "--queues", "1")
	del := []string{"delete", "allow", "from", client4, "to", "any", "port", "22", "proto", "tcp"}

	r := e.fwctlAsAdmin(del...)
	if r.code != 1 || !strings.Contains(r.stderr, "drop new ssh connections from "+client4+" to port 22") {
		t.Fatalf("%s\nwant exit 1 and the lockout named", r)
	}
	if got := fileText(t, rulesPath); got != adminRules || !e.adminReach(client4) {
		t.Fatal("a refused change changed something")
	}
	st := e.safety()
	if st.Refused != 1 || len(st.Admins) != 1 || st.Admins[0].Addr.String() != client4 || st.Admins[0].Iface != "eth0" {
		t.Errorf("status after the refusal: %+v", st)
	}
	// From a console (no session), the same change is not a lockout of
	// the one who asks; a dry run is answered either way.
	if r := e.fwctlAsAdmin(append(del, "--dry-run")...); r.code != 0 {
		t.Errorf("dry run:\n%s", r)
	}

	// --force: done, loudly.
	mark := f.mark()
	r = e.fwctlAsAdmin(append(del, "--force")...)
	if r.code != 0 || !strings.Contains(r.stdout, "LOCKOUT FORCED") {
		t.Fatalf("%s\nwant exit 0 and LOCKOUT FORCED", r)
	}
	f.waitLog(mark, "LOCKOUT FORCED")
	if e.adminReach(client4) {
		t.Fatal("after the forced change the admin still connects")
	}

	// The failsafe: rules that admit no SSH at all, yet the admin fwd
	// has seen gets in; another address does not.
	r = e.fwctlAsAdmin("apply", e.writeRules("failsafe.yaml", "failsafe: {ssh: true}\n"+lockedRules))
	if r.code != 0 {
		t.Fatalf("%s\nwant exit 0: the failsafe admits the admin, no lockout", r)
	}
	if !e.adminReach(client4) {
		t.Error("the failsafe does not admit the admin")
	}
	if e.adminReach(client4b) {
		t.Error("the failsafe admits an address that is no admin's")
	}
	r = e.mustFwctl("status", "verbose")
	if !strings.Contains(r.stdout, "Failsafe: ssh from "+client4+" to port 22") || !strings.Contains(r.stdout, "Admin: "+client4+" to port 22") {
		t.Errorf("status verbose does not show the failsafe and the admin:\n%s", r.stdout)
	}
	var check control.CheckResult
	r = e.mustFwctl("check", "tcp", client4, "22", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &check); err != nil || check.Verdict != "accept" {
		t.Errorf("fwctl check of the admin's ssh: %s (%v)", r.stdout, err)
	}
}
