package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestACL: an ACL deny for one client address on port 80 makes its new
// connections time out while the other address still connects (the
// group allows 80 from anywhere); an ACL allow for a port no group opens
// (22) lets the client in; fwd logs the deny with the entry's number.
func TestACL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	rules := e.writeRules("rules.yaml", fmt.Sprintf(`version: 1
acl:
  ingress:
    - {number: 100, action: deny, proto: tcp, ports: 80, from: [%s, %s], description: banned}
    - {number: 200, action: allow, proto: tcp, ports: 22, from: [%s, %s]}
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
`, client4b, client6b, client4, client6))
	f := e.startFwd("--rules", rules, "--queues", "1")
	parallel(
		func() { e.mustDrop(url("http", server4, 80), client4b) },
		func() { e.mustPass(url("http", server4, 80), client4) },
		func() { e.mustDrop(url("http", server6, 80), client6b) },
		func() { e.mustPass(url("http", server6, 80), client6) },
		func() { e.mustPass(url("https", server4, 443), client4b) }, // the ban is for port 80 only
		func() { e.mustPass(url("http", server4, 22), client4) },
		func() { e.mustPass(url("http", server6, 22), client6) },
		func() { e.mustDrop(url("http", server4, 22), client4b) }, // no entry, no group: dropped
	)
	if log := f.log(); !strings.Contains(log, "reason=acl-deny") || !strings.Contains(log, "acl=100") {
		t.Errorf("the ACL drops were not logged with their entry:\n%s", log)
	}
}
