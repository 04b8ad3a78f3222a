package lifecycle

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestAddRefusals: the API refuses port 0 and netmasks with holes as the
// rules file does, with the offending word, and changes nothing; a
// contiguous netmask is a prefix.
func TestAddRefusals(t *testing.T) {
	tests := []struct {
		name string
		spec RuleSpec
		want string // error message; "" for accepted
	}{
		{"port 0", RuleSpec{Proto: "tcp", Ports: []string{"0"}}, `bad port "0": port 0 is no service (expected 1-65535)`},
		{"range from 0", RuleSpec{Proto: "udp", Ports: []string{"0-1023"}}, `bad port range "0-1023": port 0 is no service (start at 1, or leave ports out for all ports)`},
		{"netmask with holes", RuleSpec{Proto: "tcp", Ports: []string{"22"}, Peers: []string{"10.0.0.0/255.0.255.255"}},
			`bad mask "/255.0.255.255" in "10.0.0.0/255.0.255.255": not contiguous, and a security group holds prefixes only (expected a netmask such as 255.255.255.0)`},
		{"netmask", RuleSpec{Proto: "tcp", Ports: []string{"22"}, Peers: []string{"10.0.0.0/255.255.255.0"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, baseRules)
			old := fx.h.Table()
			res, err := fx.svc.Add(context.Background(), AddRequest{Rules: []RuleSpec{tt.spec}}, false)
			if tt.want == "" {
				if err != nil || !res.Changed {
					t.Fatalf("add: %+v, %v", res, err)
				}
				if r := fx.h.Table().File().Groups[1].Ingress[0]; len(r.Prefixes) != 1 || r.Prefixes[0].String() != "10.0.0.0/24" {
					t.Errorf("prefixes %v, want 10.0.0.0/24", r.Prefixes)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadRequest || !strings.Contains(e.Error(), tt.want) {
				t.Fatalf("add: %v, want bad_request %s", err, tt.want)
			}
			if got, _ := os.ReadFile(fx.path); string(got) != baseRules || fx.h.Table() != old {
				t.Errorf("a refused add changed the file or the table:\n%s", got)
			}
		})
	}
}
