package lifecycle

import (
	"context"
	"slices"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
)

func TestAddOnInterface(t *testing.T) {
	fx := newFixture(t, baseRules)
	ctx := context.Background()
	pg := []RuleSpec{{Proto: "tcp", Ports: []string{"5432"}}}
	res, err := fx.svc.Add(ctx, AddRequest{Interface: "eth1", Rules: pg}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 1 || res.Added[0].Group != "local-eth1" {
		t.Fatalf("added %+v, want one rule in group local-eth1", res.Added)
	}
	f := fx.h.Table().File()
	g := f.Groups[f.GroupIndex("local-eth1")]
	if !slices.Equal(g.Interfaces, []string{"eth1"}) {
		t.Errorf("local-eth1 attached to %q, want [eth1]", g.Interfaces)
	}
	// The same rule on another interface is not the same rule...
	res, err = fx.svc.Add(ctx, AddRequest{Interface: "eth2", Rules: pg}, false)
	if err != nil || len(res.Added) != 1 || res.Added[0].Group != "local-eth2" {
		t.Fatalf("add on eth2: %+v, %v; want a rule in local-eth2", res, err)
	}
	// ...but a rule of a group on every interface covers any interface.
	res, err = fx.svc.Add(ctx, AddRequest{Interface: "eth1", Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"80", "443"}}}}, false)
	if err != nil || len(res.Added) != 0 || len(res.Skipped) != 1 {
		t.Fatalf("add 80,443 on eth1: %+v, %v; want skipped (web allows it everywhere)", res, err)
	}
	// A named group must be attached to exactly that interface.
	_, err = fx.svc.Add(ctx, AddRequest{Group: "web", Interface: "eth1", Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"22"}}}}, false)
	if e, ok := err.(*Error); !ok || e.Code != CodeBadRequest {
		t.Fatalf("add on eth1 to web (every interface): %v, want bad_request", err)
	}
	_, err = fx.svc.Add(ctx, AddRequest{Interface: "e*1", Rules: pg}, false)
	if e, ok := err.(*Error); !ok || e.Code != CodeBadRequest {
		t.Fatalf("bad interface pattern: %v, want bad_request", err)
	}
}

func TestDeleteOnInterface(t *testing.T) {
	fx := newFixture(t, baseRules)
	ctx := context.Background()
	pg := []RuleSpec{{Proto: "tcp", Ports: []string{"5432"}}}
	for _, iface := range []string{"eth1", "eth2"} {
		if _, err := fx.svc.Add(ctx, AddRequest{Interface: iface, Rules: pg}, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		req  DeleteRequest
		code Code     // the error's code; "" for none
		left []string // groups still holding a 5432 rule after it
		gone []string // groups the deletion named
	}{
		{"an interface no group is on", DeleteRequest{Rules: pg, Interface: "eth3"}, CodeNotFound, []string{"local-eth1", "local-eth2"}, nil},
		{"a bad interface", DeleteRequest{Rules: pg, Interface: "e*1"}, CodeBadRequest, []string{"local-eth1", "local-eth2"}, nil},
		{"an interface with numbers", DeleteRequest{Numbers: []int{1}, Interface: "eth1"}, CodeBadRequest, []string{"local-eth1", "local-eth2"}, nil},
		{"one interface", DeleteRequest{Rules: pg, Interface: "eth1"}, "", []string{"local-eth2"}, []string{"local-eth1"}},
		{"no interface: every group", DeleteRequest{Rules: pg}, "", nil, []string{"local-eth2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := fx.svc.Delete(ctx, tc.req, false)
			if tc.code != "" {
				if e, ok := err.(*Error); !ok || e.Code != tc.code {
					t.Fatalf("delete %+v: %v, want %s", tc.req, err, tc.code)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			var gone []string
			for _, d := range res.Deleted {
				gone = append(gone, d.Group)
			}
			if !slices.Equal(gone, tc.gone) {
				t.Errorf("deleted from %q, want %q", gone, tc.gone)
			}
			f := fx.h.Table().File()
			var left []string
			for _, g := range f.Groups {
				for _, r := range g.Ingress {
					if slices.ContainsFunc(r.Ports, func(p rules.PortRange) bool { return p.Lo == 5432 }) {
						left = append(left, g.Name)
					}
				}
			}
			if !slices.Equal(left, tc.left) {
				t.Errorf("groups with 5432 left: %q, want %q", left, tc.left)
			}
		})
	}
}
