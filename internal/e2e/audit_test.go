package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/control"
)

// The migration path of a host onto fwd, end to end: fwd --audit accepts
// a connection its rules drop and says it is not enforcing; fwctl
// suggest proposes the rule that admits it; applying it and leaving
// audit mode enforces the rules; the history names the edit's peer, and
// rollback restores the rules from before it.
func TestAuditSuggestHistory(t *testing.T) {
	e := newEnv(t)
	const rulesBody = `version: 1
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [any]}
`
	rulesPath := e.writeRules("rules.yaml", rulesBody)
	echoServe(listenIn(t, e.server, "tcp4", server4+":8081"))
	echoServe(listenIn(t, e.server, "tcp4", server4+":8082"))
	connects := func(port string, wait time.Duration) bool {
		c, err := dialIn(e.client, "tcp4", client4, server4+":"+port, wait)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(wait))
		if _, err := c.Write([]byte("x")); err != nil {
			return false
		}
		b := make([]byte, 1)
		_, err = c.Read(b)
		return err == nil
	}

	f := e.startFwd("--rules", rulesPath, "--audit")
	if !connects("8081", 5*time.Second) {
		t.Fatal("fwd --audit dropped a connection: audit mode must accept everything")
	}
	st := e.mustFwctl("status")
	if first, _, _ := strings.Cut(st.stdout, "\n"); !strings.Contains(first, "AUDIT MODE: NOT ENFORCING") {
		t.Errorf("status's first line does not say it is not enforcing: %q", first)
	}
	if n := counter(t, e.status(), "audit_would_drop_no_match"); n == 0 {
		t.Error("no would-drop counted")
	}
	f.waitLog(0, "would_drop=true")

	sug := e.mustFwctl("suggest")
	const want = "fwctl allow from 198.18.0.0/24 to any port 8081 proto tcp"
	if !strings.Contains(sug.stdout, want) {
		t.Fatalf("fwctl suggest does not propose %q:\n%s", want, sug.stdout)
	}
	e.mustFwctl(strings.Fields(want)[1:]...) // apply it as proposed

	hist := e.mustFwctl("history", "-o", "json")
	var es []control.HistoryEntry
	if err := json.Unmarshal([]byte(hist.stdout), &es); err != nil {
		t.Fatalf("history -o json: %v\n%s", err, hist.stdout)
	}
	if len(es) < 2 || es[0].Action != "start" || es[len(es)-1].Action != "edit" {
		t.Fatalf("history: %s", hist.stdout)
	}
	edit := es[len(es)-1]
	if p := edit.Peer; p == nil || p.UID != 0 || p.PID <= 0 || !strings.Contains(p.Command, "fwctl") || !strings.Contains(p.Command, "allow from 198.18.0.0/24") {
		t.Errorf("the edit's peer is %+v, want uid 0 and fwctl's pid and command line", edit.Peer)
	}
	if !strings.Contains(edit.Diff, "8081") {
		t.Errorf("the edit's diff lacks the rule:\n%s", edit.Diff)
	}

	// Out of audit mode the rules are enforced: the suggested rule
	// admits 8081, nothing admits 8082.
	f.stop()
	e.startFwd("--rules", rulesPath)
	if first, _, _ := strings.Cut(e.mustFwctl("status").stdout, "\n"); strings.Contains(first, "AUDIT") {
		t.Errorf("status without --audit: %q", first)
	}
	if !connects("8081", 5*time.Second) {
		t.Error("the applied suggestion does not admit 8081")
	}
	if connects("8082", time.Second) {
		t.Error("8082 passed without --audit: the rules are not enforced")
	}

	// Rollback to the first start: 8081 is dropped again (a new
	// connection: established ones stay), and the rollback is recorded.
	e.mustFwctl("rollback", "1")
	if connects("8081", time.Second) {
		t.Error("8081 still admitted after rolling back to the rules without it")
	}
	if got := e.mustFwctl("history").stdout; !strings.Contains(got, "rollback to 1") {
		t.Errorf("history does not list the rollback:\n%s", got)
	}
}
