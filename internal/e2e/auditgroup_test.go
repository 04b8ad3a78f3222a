package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestAuditGroup: a group in audit mode (mode: audit) audits the traffic
// it decides: a connection no rule allows is accepted and counted as a
// would-drop, status says fwd does not enforce and names the group, and
// a reload with mode: enforce drops it again.
func TestAuditGroup(t *testing.T) {
	e := newEnv(t)
	const staged = `version: 1
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [any]}
  - name: web
    mode: audit
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
`
	rulesPath := e.writeRules("rules.yaml", staged)
	echoServe(listenIn(t, e.server, "tcp4", server4+":8083"))
	connects := func(wait time.Duration) bool {
		c, err := dialIn(e.client, "tcp4", client4, server4+":8083", wait)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	e.startFwd("--rules", rulesPath)
	if !connects(5 * time.Second) {
		t.Fatal("a group in audit mode: a connection no rule allows was dropped, want accepted as a would-drop")
	}
	st := e.mustFwctl("status")
	if first, _, _ := strings.Cut(st.stdout, "\n"); !strings.Contains(first, "NOT ENFORCING") || !strings.Contains(first, "web") {
		t.Errorf("status's first line does not say the group is audited: %q", first)
	}
	if n := counter(t, e.status(), "audit_would_drop_no_match"); n == 0 {
		t.Error("no would-drop counted")
	}
	// Enforced: the same connection is dropped.
	e.writeRules("rules.yaml", strings.Replace(staged, "mode: audit", "mode: enforce", 1))
	e.mustFwctl("reload")
	if connects(2 * time.Second) {
		t.Error("with mode: enforce a connection no rule allows passed")
	}
}
