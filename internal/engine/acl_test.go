package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// aclRules is webRules with an ACL in front: 100 bans one address from
// port 80, 200 opens 22 (which no group opens) to one address.
var aclRules = strings.Replace(webRules, "groups:", `acl:
  ingress:
    - {number: 100, action: deny, proto: tcp, ports: 80, from: [198.19.9.9]}
    - {number: 200, action: allow, proto: tcp, ports: 22, from: [198.18.0.2]}
groups:`, 1)

func TestDecideACL(t *testing.T) {
	var logBuf bytes.Buffer
	e, _ := mustEngine(t, aclRules, slog.New(slog.NewTextHandler(&logBuf, nil)))
	w := e.NewWorker(0)
	in := nfq.HookLocalIn
	banned := &nfq.Msg{Hook: in, Payload: pkt(t, "tcp", "198.19.9.9", "198.18.0.1", 80)}
	other := &nfq.Msg{Hook: in, Payload: pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 80)}
	ssh := &nfq.Msg{Hook: in, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 22)}
	if v := w.Decide(banned); v != verdict.Drop {
		t.Errorf("banned address: %v, want drop", v)
	}
	if line := logBuf.String(); !strings.Contains(line, "reason=acl-deny") || !strings.Contains(line, "acl=100") {
		t.Errorf("drop line does not name the entry: %s", line)
	}
	for _, m := range []*nfq.Msg{other, ssh, ssh} {
		if v := w.Decide(m); v != verdict.Accept {
			t.Errorf("%v, want accept", v)
		}
	}
	if w.aclDeny.Load() != 1 || w.aclAllow.Load() != 2 || w.noMatch.Load() != 0 || w.accepted.Load() != 3 {
		t.Errorf("counters deny %d allow %d no-match %d accepted %d, want 1 2 0 3", w.aclDeny.Load(), w.aclAllow.Load(), w.noMatch.Load(), w.accepted.Load())
	}
	hits := e.RuleHits(e.Table())
	if hits[filter.ACLKey(direction.Ingress, 100)] != 1 || hits[filter.ACLKey(direction.Ingress, 200)] != 2 {
		t.Errorf("acl hits = %v, want 1 on 100, 2 on 200", hits)
	}
	// A swap to the same rules carries the entries' counts.
	again, err := filter.Compile(e.Table().File())
	if err != nil {
		t.Fatal(err)
	}
	e.Swap(again)
	if got := e.RuleHits(again)[filter.ACLKey(direction.Ingress, 200)]; got != 2 {
		t.Errorf("after a swap entry 200 has %d hits, want 2", got)
	}
	// The hot path stays allocation-free on ACL decisions.
	fixed := time.Unix(1000, 0)
	w.now = func() time.Time { return fixed }
	for _, m := range []*nfq.Msg{banned, ssh} {
		for range 2 * e.cfg.DropLogBurst {
			w.Decide(m)
		}
		if n := testing.AllocsPerRun(200, func() { w.Decide(m) }); n != 0 {
			t.Errorf("%v allocs per Decide on an ACL decision, want 0", n)
		}
	}
}
