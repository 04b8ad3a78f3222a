package lifecycle

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

var aclClock = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// aclFixture is newFixture with a fixed clock (settable) and a Revoke
// hook that records what it was asked to cut.
func aclFixture(t *testing.T, content string) (*fixture, *time.Time, *[]string) {
	t.Helper()
	fx := newFixture(t, content)
	now := aclClock
	var revoked []string
	fx.svc = NewService(ServiceConfig{Path: fx.path, Target: fx.h, Now: func() time.Time { return now },
		Revoke: func(_ context.Context, d direction.Dir, e rules.ACLEntry) (int, error) {
			revoked = append(revoked, e.Format(d))
			return 1, nil
		}})
	return fx, &now, &revoked
}

func deny(peer string) ACLSpec {
	return ACLSpec{Action: "deny", RuleSpec: RuleSpec{Proto: "all", Peers: []string{peer}}}
}

func dropsFrom(tab *filter.Table, peer string) bool {
	return !tab.Match(filter.Key{Proto: ipproto.TCP, Peer: netip.MustParseAddr(peer), Port: 80}).Accepted()
}

func TestAddACL(t *testing.T) {
	fx, _, revoked := aclFixture(t, baseRules)
	ctx := context.Background()
	for i, tc := range []struct {
		req     ACLAddRequest
		number  int
		skipped bool
	}{
		{ACLAddRequest{ACLSpec: deny("198.18.0.66")}, 100, false},
		{ACLAddRequest{ACLSpec: deny("198.18.0.67")}, 200, false},
		{ACLAddRequest{ACLSpec: deny("198.18.0.66")}, 100, true}, // there already
		{ACLAddRequest{Number: 150, ACLSpec: ACLSpec{Action: "allow", RuleSpec: RuleSpec{Proto: "tcp", Ports: []string{"443"}, Peers: []string{"198.18.0.0/24"}}}}, 150, false},
	} {
		res, err := fx.svc.AddACL(ctx, tc.req, false)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if tc.skipped {
			if res.Changed || len(res.ACLSkipped) != 1 || res.ACLSkipped[0].Number != tc.number {
				t.Fatalf("%d: %+v, want skipped as %d", i, res, tc.number)
			}
			continue
		}
		if !res.Changed || len(res.ACLAdded) != 1 || res.ACLAdded[0].Number != tc.number {
			t.Fatalf("%d: %+v, want entry %d added", i, res, tc.number)
		}
	}
	tab := fx.h.Table()
	if !dropsFrom(tab, "198.18.0.66") || !dropsFrom(tab, "198.18.0.67") || dropsFrom(tab, "198.18.0.68") {
		t.Fatal("live table does not deny exactly the denied peers")
	}
	// tcp 443 from .67: 150 allows it before 200 denies it.
	if got := tab.Match(filter.Key{Proto: ipproto.TCP, Peer: netip.MustParseAddr("198.18.0.67"), Port: 443}); got.ACL != 150 {
		t.Fatalf("tcp 443 from .67 decided by %d, want 150", got.ACL)
	}
	// Only the two new denies were revoked, not the allow or the skip.
	if len(*revoked) != 2 || !strings.Contains((*revoked)[0], "100 deny") {
		t.Fatalf("revoked %q", *revoked)
	}
}

func TestAddACLRefusals(t *testing.T) {
	content := baseRules + "acl:\n  ingress:\n    - {number: 100, action: deny, proto: all, from: [198.18.0.1]}\n    - {number: 101, action: deny, proto: all, from: [198.18.0.2]}\n"
	for _, tc := range []struct {
		name string
		req  ACLAddRequest
		code Code
		msg  string
	}{
		{"taken", ACLAddRequest{Number: 100, ACLSpec: deny("198.18.0.9")}, CodeNumberTaken, "free numbers nearest to it: 99 and 102"},
		{"range", ACLAddRequest{Number: 40000, ACLSpec: deny("198.18.0.9")}, CodeBadRequest, "out of range"},
		{"action", ACLAddRequest{ACLSpec: ACLSpec{Action: "reject", RuleSpec: RuleSpec{Proto: "all"}}}, CodeBadRequest, `bad action "reject"`},
		{"expire", ACLAddRequest{ACLSpec: deny("198.18.0.9"), Expire: "soon"}, CodeBadRequest, `bad expire "soon"`},
		{"peer", ACLAddRequest{ACLSpec: deny("nolist")}, CodeBadRequest, "nolist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx, _, revoked := aclFixture(t, content)
			_, err := fx.svc.AddACL(context.Background(), tc.req, false)
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %v, want %s with %q", err, tc.code, tc.msg)
			}
			if data, _ := os.ReadFile(fx.path); string(data) != content {
				t.Fatal("a refused edit changed the file")
			}
			if fx.svc.Stats().Failed != 0 || len(*revoked) != 0 {
				t.Fatal("a refusal counted as a failure or revoked")
			}
		})
	}
}

func TestACLEditsReadOnlyAndDryRun(t *testing.T) {
	fx := newFixture(t, baseRules)
	ro := NewService(ServiceConfig{Path: fx.path, Target: fx.h, ReadOnly: "shipped rules"})
	ctx := context.Background()
	var e *Error
	if _, err := ro.AddACL(ctx, ACLAddRequest{ACLSpec: deny("198.18.0.9")}, false); !errors.As(err, &e) || e.Code != CodeReadOnly {
		t.Fatalf("read-only add: %v", err)
	}
	res, err := ro.AddACL(ctx, ACLAddRequest{ACLSpec: deny("198.18.0.9")}, true)
	if err != nil || !res.DryRun || !strings.Contains(res.Diff, "+acl:") || len(res.ACLAdded) != 1 {
		t.Fatalf("read-only dry run: %+v, %v", res, err)
	}
	if data, _ := os.ReadFile(fx.path); string(data) != baseRules {
		t.Fatal("dry run changed the file")
	}
	if dropsFrom(fx.h.Table(), "198.18.0.9") {
		t.Fatal("dry run changed the table")
	}
}

func TestDeleteACL(t *testing.T) {
	content := baseRules + "acl:\n  ingress:\n    - {number: 100, action: deny, proto: all, from: [198.18.0.1]}\n    - {number: 200, action: deny, proto: all, from: [198.18.0.2]}\n  egress:\n    - {number: 100, action: deny, proto: all, to: [198.18.0.3]}\n"
	fx, _, _ := aclFixture(t, content)
	ctx := context.Background()
	var e *Error
	if _, err := fx.svc.DeleteACL(ctx, ACLDeleteRequest{Numbers: []int{150}}, false); !errors.As(err, &e) || e.Code != CodeNotFound || !strings.Contains(e.Message, "100, 200") {
		t.Fatalf("missing number: %v", err)
	}
	if _, err := fx.svc.DeleteACL(ctx, ACLDeleteRequest{Entries: []ACLSpec{deny("198.18.0.9")}}, false); !errors.As(err, &e) || e.Code != CodeNotFound {
		t.Fatalf("missing entry: %v", err)
	}
	res, err := fx.svc.DeleteACL(ctx, ACLDeleteRequest{Dir: "out", Numbers: []int{100}}, false)
	if err != nil || len(res.ACLDeleted) != 1 || res.ACLDeleted[0].Dir != "out" {
		t.Fatalf("delete out 100: %+v, %v", res, err)
	}
	res, err = fx.svc.DeleteACL(ctx, ACLDeleteRequest{Entries: []ACLSpec{deny("198.18.0.2")}}, false)
	if err != nil || len(res.ACLDeleted) != 1 || res.ACLDeleted[0].Number != 200 {
		t.Fatalf("delete deny from .2: %+v, %v", res, err)
	}
	tab := fx.h.Table()
	if !dropsFrom(tab, "198.18.0.1") || dropsFrom(tab, "198.18.0.2") {
		t.Fatal("live table after the deletes")
	}
	// A hand edit not reloaded makes numbers stale.
	if err := os.WriteFile(fx.path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.svc.DeleteACL(ctx, ACLDeleteRequest{Numbers: []int{100}}, false); !errors.As(err, &e) || e.Code != CodeStaleNumbers {
		t.Fatalf("stale: %v", err)
	}
}

func TestACLExpiry(t *testing.T) {
	fx, now, _ := aclFixture(t, baseRules)
	ctx := context.Background()
	res, err := fx.svc.AddACL(ctx, ACLAddRequest{ACLSpec: deny("198.18.0.66"), Expire: "10m"}, false)
	if err != nil || res.ACLAdded[0].Expires != "2026-01-01T00:10:00Z" {
		t.Fatalf("add with expire: %+v, %v", res, err)
	}
	before := fx.h.Table()
	if !dropsFrom(before, "198.18.0.66") || !before.NextExpiry().Equal(aclClock.Add(10*time.Minute)) {
		t.Fatalf("table before expiry: drops %v, next expiry %v", dropsFrom(before, "198.18.0.66"), before.NextExpiry())
	}
	// Not due yet: Recompile does nothing.
	*now = aclClock.Add(9 * time.Minute)
	if done, err := fx.svc.Recompile(ctx); done || err != nil || fx.h.Table() != before {
		t.Fatalf("recompile before expiry: %v, %v", done, err)
	}
	// Due: the entry no longer matches, and the file is untouched.
	data, _ := os.ReadFile(fx.path)
	*now = aclClock.Add(10 * time.Minute)
	if done, err := fx.svc.Recompile(ctx); !done || err != nil {
		t.Fatalf("recompile at expiry: %v, %v", done, err)
	}
	after := fx.h.Table()
	if dropsFrom(after, "198.18.0.66") || !after.NextExpiry().IsZero() {
		t.Fatal("the expired entry still matches")
	}
	if got, _ := os.ReadFile(fx.path); string(got) != string(data) {
		t.Fatal("recompile wrote the file")
	}
	if st := fx.svc.ACL(nil); len(st) != 1 || !st[0].Expired {
		t.Fatalf("status: %+v, want the entry shown expired", st)
	}
	// The next ACL edit removes it from the file.
	res, err = fx.svc.AddACL(ctx, ACLAddRequest{ACLSpec: deny("198.18.0.67")}, false)
	if err != nil || len(res.ACLExpired) != 1 || res.ACLExpired[0].Number != 100 || res.ACLAdded[0].Number != 100 {
		t.Fatalf("next edit: %+v, %v", res, err)
	}
}

func TestReloadRecompilesAfterExpiry(t *testing.T) {
	content := baseRules + "acl:\n  ingress:\n    - {number: 100, action: deny, proto: all, from: [198.18.0.1], expires: 2026-01-01T00:10:00Z}\n"
	fx, now, _ := aclFixture(t, baseRules)
	ctx := context.Background()
	if err := os.WriteFile(fx.path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.svc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if !dropsFrom(fx.h.Table(), "198.18.0.1") {
		t.Fatal("entry not live before its expiry")
	}
	*now = aclClock.Add(time.Hour)
	res, err := fx.svc.Reload(ctx)
	if err != nil || !res.Changed || dropsFrom(fx.h.Table(), "198.18.0.1") {
		t.Fatalf("reload after expiry of an unchanged file: %+v, %v", res, err)
	}
}

func TestNextACLNumber(t *testing.T) {
	acl := func(entries ...rules.ACLEntry) *rules.ACL { return &rules.ACL{Ingress: entries} }
	e := func(n int, a rules.Action) rules.ACLEntry { return rules.ACLEntry{Number: n, Action: a} }
	for _, tc := range []struct {
		name string
		acl  *rules.ACL
		act  rules.Action
		want int
		ok   bool
	}{
		{"first", acl(), rules.Deny, 100, true},
		{"after", acl(e(100, rules.Deny), e(150, rules.Allow)), rules.Deny, 200, true},
		{"top, below allow", acl(e(32700, rules.Deny), e(5, rules.Allow)), rules.Deny, 6, true},
		{"top, allow over deny", acl(e(32700, rules.Deny), e(5, rules.Allow)), rules.Allow, 32701, true},
		{"full", acl(e(32766, rules.Allow)), rules.Deny, 0, false},
	} {
		got, ok := NextACLNumber(tc.acl, direction.Ingress, tc.act)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
