package lifecycle

import (
	"context"
	"errors"
	"os"
	"testing"
)

const idRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 22, from: [any]}
      - {proto: tcp, ports: [80, 443], from: [any]}
    egress:
      - {proto: udp, ports: 123, to: [any]}
`

// ids maps the live rules' texts to their IDs, as status shows them.
func ids(t *testing.T, s *Service) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range s.Rules(nil) {
		if r.ID == "" {
			t.Fatalf("rule %d (%s) has no ID", r.Number, r.Text)
		}
		out[r.Text] = r.ID
	}
	return out
}

// TestRuleIDsSurviveEdits: an add moves the egress rule's number, not its
// ID; a delete leaves the other rules' IDs as they were.
func TestRuleIDsSurviveEdits(t *testing.T) {
	fx := newFixture(t, idRules)
	ctx := context.Background()
	before := ids(t, fx.svc)
	ntpNumber := fx.svc.Rules(nil)[2].Number
	if _, err := fx.svc.Add(ctx, AddRequest{Group: "web", Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"8080"}}}}, false); err != nil {
		t.Fatal(err)
	}
	after := ids(t, fx.svc)
	for text, id := range before {
		if after[text] != id {
			t.Errorf("%s: ID %s after an add, was %s", text, after[text], id)
		}
	}
	if rs := fx.svc.Rules(nil); rs[3].Text != "udp 123 to any" || rs[3].Number == ntpNumber {
		t.Fatalf("the egress rule's number did not move (the case IDs are for): %+v", rs)
	}
	if _, err := fx.svc.Delete(ctx, DeleteRequest{IDs: []string{before["tcp 22 from any"]}}, false); err != nil {
		t.Fatal(err)
	}
	for text, id := range ids(t, fx.svc) {
		if was, ok := after[text]; !ok || was != id {
			t.Errorf("%s: ID %s after a delete, was %s", text, id, was)
		}
	}
}

func TestDeleteByID(t *testing.T) {
	tests := []struct {
		name     string
		req      func(ids map[string]string) DeleteRequest
		handEdit bool     // the file changed on disk, not reloaded
		code     Code     // the error's; "" for success
		deleted  []string // texts, in order
	}{
		{"one ID", func(ids map[string]string) DeleteRequest {
			return DeleteRequest{IDs: []string{ids["udp 123 to any"]}}
		}, false, "", []string{"udp 123 to any"}},
		{"two IDs, in the order given", func(ids map[string]string) DeleteRequest {
			return DeleteRequest{IDs: []string{ids["tcp 80,443 from any"], ids["tcp 22 from any"]}}
		}, false, "", []string{"tcp 80,443 from any", "tcp 22 from any"}},
		{"an ID and the number of the same rule: deleted once", func(ids map[string]string) DeleteRequest {
			return DeleteRequest{Numbers: []int{1}, IDs: []string{ids["tcp 22 from any"]}}
		}, false, "", []string{"tcp 22 from any"}},
		{"no such rule", func(map[string]string) DeleteRequest {
			return DeleteRequest{IDs: []string{"sgr-000000000000"}}
		}, false, CodeNotFound, nil},
		{"not an ID", func(map[string]string) DeleteRequest {
			return DeleteRequest{IDs: []string{"sgr-xyz"}}
		}, false, CodeBadRequest, nil},
		{"the file changed since the load", func(ids map[string]string) DeleteRequest {
			return DeleteRequest{IDs: []string{ids["tcp 22 from any"]}}
		}, true, CodeStaleNumbers, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, idRules)
			req := tt.req(ids(t, fx.svc))
			want := idRules
			if tt.handEdit {
				want = idRules + "      - {proto: udp, ports: 53, to: [any]}\n"
				if err := os.WriteFile(fx.path, []byte(want), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			res, err := fx.svc.Delete(context.Background(), req, false)
			if tt.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tt.code {
					t.Fatalf("delete %+v: %v, want %s", req, err, tt.code)
				}
				if got, _ := os.ReadFile(fx.path); string(got) != want || fx.h.swaps.Load() != 0 {
					t.Errorf("a refused delete changed the file or the table:\n%s", got)
				}
				if fx.svc.Stats().Failed != 0 {
					t.Errorf("a refused delete counted as a failure: %+v", fx.svc.Stats())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res.Deleted {
				got = append(got, r.Text)
				if r.ID != req.IDs[len(got)-1] && len(req.Numbers) == 0 {
					t.Errorf("deleted %s reported with ID %s, asked %s", r.Text, r.ID, req.IDs[len(got)-1])
				}
			}
			if len(got) != len(tt.deleted) {
				t.Fatalf("deleted %q, want %q", got, tt.deleted)
			}
			for i := range got {
				if got[i] != tt.deleted[i] {
					t.Fatalf("deleted %q, want %q", got, tt.deleted)
				}
			}
			live := ids(t, fx.svc)
			for _, text := range tt.deleted {
				if _, ok := live[text]; ok {
					t.Errorf("%s still live", text)
				}
			}
		})
	}
}
