package engine

import (
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// A group in audit mode audits the traffic it decides: on the
// interfaces it is attached to, what no rule allows is accepted and
// counted as a would-drop; elsewhere it is dropped as usual.
const auditGroupRules = `version: 1
groups:
  - name: pub
    interfaces: [eth0]
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
  - name: staging
    interfaces: [eth1]
    mode: audit
    ingress:
      - {proto: tcp, ports: 5432, from: [any]}
`

func TestDecideAuditGroup(t *testing.T) {
	e, _ := mustEngine(t, auditGroupRules, nil)
	w := e.NewWorker(0)
	e.workers = append(e.workers, w) // AuditStats sums the started workers
	const eth0, eth1 = 2, 3
	e.SetLinks([]filter.Link{{Index: eth0, Name: "eth0"}, {Index: eth1, Name: "eth1"}})
	in := func(dev uint32, port uint16) *nfq.Msg {
		return &nfq.Msg{Hook: nfq.HookLocalIn, InDev: dev, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", port)}
	}
	tests := []struct {
		name string
		m    *nfq.Msg
		want verdict.Verdict
	}{
		{"80 on eth0, by a rule", in(eth0, 80), verdict.Accept},
		{"22 on eth0, enforced", in(eth0, 22), verdict.Drop},
		{"5432 on eth1, by the audit group's rule", in(eth1, 5432), verdict.Accept},
		{"22 on eth1, audited: accepted, a would-drop", in(eth1, 22), verdict.Accept},
		{"80 on eth1, audited too", in(eth1, 80), verdict.Accept},
	}
	for _, tt := range tests {
		if v := w.Decide(tt.m); v != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, v, tt.want)
		}
	}
	if got := e.AuditStats(); got.NoMatch != 2 {
		t.Errorf("would-drops %+v, want 2 no-match", got)
	}
	if got := w.noMatch.Load(); got != 1 {
		t.Errorf("drops %d, want 1 (22 on eth0)", got)
	}
	if e.WouldDrops() == nil {
		t.Error("no would-drop table for a table with a group in audit mode")
	}
	if g := e.AuditGroups(); len(g) != 1 || g[0] != "staging" {
		t.Errorf("audit groups %v, want [staging]", g)
	}
	m := in(eth1, 22)
	if n := testing.AllocsPerRun(200, func() { w.Decide(m) }); n != 0 {
		t.Errorf("an audited would-drop allocates %v times", n)
	}
}

// Without interfaces a group in audit mode audits every flow: a group
// cannot drop on its own, the union of the groups decides.
func TestDecideAuditGroupNoInterfaces(t *testing.T) {
	e, _ := mustEngine(t, `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
  - name: staging
    mode: audit
    ingress: []
`, nil)
	w := e.NewWorker(0)
	if v := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 22)}); v != verdict.Accept {
		t.Errorf("22 with a group in audit mode: %v, want accept (a would-drop)", v)
	}
	e2, _ := mustEngine(t, `version: 1
groups:
  - name: web
    mode: enforce
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
`, nil)
	if v := e2.NewWorker(0).Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 22)}); v != verdict.Drop {
		t.Errorf("22 with mode: enforce: %v, want drop", v)
	}
}

// An ACL deny is not a group's decision: a group in audit mode leaves it
// enforced.
func TestDecideAuditGroupKeepsACL(t *testing.T) {
	e, _ := mustEngine(t, `version: 1
acl:
  ingress:
    - {number: 100, action: deny, proto: tcp, ports: 22, from: [198.18.0.2]}
groups:
  - name: staging
    mode: audit
    ingress: []
`, nil)
	w := e.NewWorker(0)
	if v := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 22)}); v != verdict.Drop {
		t.Errorf("22 denied by the ACL with a group in audit mode: %v, want drop", v)
	}
	if v := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 23)}); v != verdict.Accept {
		t.Errorf("23 with a group in audit mode: %v, want accept (a would-drop)", v)
	}
}
