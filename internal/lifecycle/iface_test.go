package lifecycle

import (
	"context"
	"slices"
	"testing"
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
