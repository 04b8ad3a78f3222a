package filter

import (
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// A connection that a rule without a limit allows is reported by that
// rule, even when a rule with a limit comes first in the file: the
// limit must not brake what another rule allows freely.
func TestMatchPrefersRulesWithoutLimit(t *testing.T) {
	src := `version: 1
groups:
  - name: a
    ingress:
      - {proto: tcp, ports: 22, from: [any], limit: {conns: 6, per: 30s}}
      - {proto: tcp, ports: 22, from: [198.18.0.0/24]}
      - {proto: tcp, ports: 2222, from: [any], limit: {conns: 6, per: 30s}}
  - name: b
    ingress:
      - {proto: tcp, ports: 2222, from: [198.18.1.0/24]}
`
	f, err := rules.Parse("l.yaml", []byte(src), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		peer        string
		port        uint16
		group, rule int32
	}{
		{"198.18.0.7", 22, 0, 1},   // the free rule, second in the file
		{"198.18.9.7", 22, 0, 0},   // only the limited rule
		{"198.18.1.7", 2222, 1, 0}, // another group's free rule
		{"198.18.9.7", 2222, 0, 2},
	}
	for _, tt := range tests {
		v := tab.Match(Key{Dir: direction.Ingress, Proto: ipproto.TCP, Peer: netip.MustParseAddr(tt.peer), Port: tt.port})
		if !v.Accepted() || v.Group != tt.group || v.Rule != tt.rule {
			t.Errorf("%s:%d: got group %d rule %d (%v), want group %d rule %d", tt.peer, tt.port, v.Group, v.Rule, v.Verdict, tt.group, tt.rule)
		}
		if r := tab.Rule(v); r == nil || (r.Limit != nil) != (tt.rule != 1 && tt.group == 0) {
			t.Errorf("%s:%d: rule %v", tt.peer, tt.port, r)
		}
	}
}
