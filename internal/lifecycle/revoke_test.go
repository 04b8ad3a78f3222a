package lifecycle

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

const twoRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
      - {proto: tcp, ports: 443, from: [any]}
`

// TestRevoke: a delete or reload asked to revoke calls CutFlows once,
// after the new table is live, with that table, and reports the count;
// without revoke, on a dry run or a failed change it is not called; a
// CutFlows error is a note and the change stays done.
func TestRevoke(t *testing.T) {
	del80 := func(revoke bool) DeleteRequest {
		return DeleteRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"80"}}}, Revoke: revoke}
	}
	type outcome struct {
		cut    *int
		notes  string // of the result (notes or warnings)
		called bool
	}
	for _, tc := range []struct {
		name    string
		cutErr  error
		step    func(ctx context.Context, svc *Service) (outcome, error)
		want    outcome
		wantErr bool
	}{
		{"delete --revoke", nil, func(ctx context.Context, svc *Service) (outcome, error) {
			r, err := svc.Delete(ctx, del80(true), false)
			return outcome{cut: r.Cut}, err
		}, outcome{cut: cutN(3), called: true}, false},
		{"delete", nil, func(ctx context.Context, svc *Service) (outcome, error) {
			r, err := svc.Delete(ctx, del80(false), false)
			return outcome{cut: r.Cut}, err
		}, outcome{}, false},
		{"delete --revoke --dry-run", nil, func(ctx context.Context, svc *Service) (outcome, error) {
			r, err := svc.Delete(ctx, del80(true), true)
			return outcome{cut: r.Cut}, err
		}, outcome{}, false},
		{"delete --revoke of no rule", nil, func(ctx context.Context, svc *Service) (outcome, error) {
			r, err := svc.Delete(ctx, DeleteRequest{Numbers: []int{9}, Revoke: true}, false)
			return outcome{cut: r.Cut}, err
		}, outcome{}, true},
		{"delete --revoke, cut fails", errors.New("ctnetlink: boom"), func(ctx context.Context, svc *Service) (outcome, error) {
			r, err := svc.Delete(ctx, del80(true), false)
			return outcome{cut: r.Cut, notes: strings.Join(r.Notes, ";")}, err
		}, outcome{notes: "revoke: ctnetlink: boom: established connections the rules no longer allow may go on", called: true}, false},
		{"reload --revoke, unchanged", nil, func(ctx context.Context, svc *Service) (outcome, error) {
			r, err := svc.ReloadWith(ctx, ReloadOptions{Revoke: true})
			return outcome{cut: r.Cut}, err
		}, outcome{cut: cutN(3), called: true}, false},
		{"reload", nil, func(ctx context.Context, svc *Service) (outcome, error) {
			r, err := svc.ReloadWith(ctx, ReloadOptions{})
			return outcome{cut: r.Cut}, err
		}, outcome{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, twoRules)
			var got outcome
			fx.svc.cfg.CutFlows = func(_ context.Context, live *filter.Table) (int, error) {
				if live != fx.h.Table() {
					t.Error("CutFlows called with a table that is not live")
				}
				got.called = true
				return 3, tc.cutErr
			}
			o, err := tc.step(context.Background(), fx.svc)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want an error: %v", err, tc.wantErr)
			}
			o.called = got.called
			if o.called != tc.want.called || o.notes != tc.want.notes || (o.cut == nil) != (tc.want.cut == nil) || o.cut != nil && *o.cut != *tc.want.cut {
				t.Errorf("got called=%v cut=%v notes=%q, want called=%v cut=%v notes=%q", o.called, cutOf(o.cut), o.notes, tc.want.called, cutOf(tc.want.cut), tc.want.notes)
			}
		})
	}
}

// TestRevokeSeesNewTable: CutFlows runs once the delete is live: the
// table it gets no longer accepts the deleted port, and still the other.
func TestRevokeSeesNewTable(t *testing.T) {
	fx := newFixture(t, twoRules)
	var seen *filter.Table
	fx.svc.cfg.CutFlows = func(_ context.Context, live *filter.Table) (int, error) { seen = live; return 0, nil }
	if _, err := fx.svc.Delete(context.Background(), DeleteRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"80"}}}, Revoke: true}, false); err != nil {
		t.Fatal(err)
	}
	if seen == nil || accepts(seen, ipproto.TCP, 80) || !accepts(seen, ipproto.TCP, 443) {
		t.Fatalf("CutFlows saw %p: want the new table, without port 80, with 443", seen)
	}
}

// TestRevokeUnsupported: without CutFlows, a revoke is refused and
// nothing changes.
func TestRevokeUnsupported(t *testing.T) {
	fx := newFixture(t, twoRules)
	old := fx.h.Table()
	_, err := fx.svc.Delete(context.Background(), DeleteRequest{Numbers: []int{1}, Revoke: true}, false)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBadRequest || fx.h.Table() != old {
		t.Fatalf("delete --revoke without CutFlows: %v; want bad_request and nothing changed", err)
	}
	if _, err := fx.svc.ReloadWith(context.Background(), ReloadOptions{Revoke: true}); !errors.As(err, &e) || e.Code != CodeBadRequest {
		t.Fatalf("reload --revoke without CutFlows: %v; want bad_request", err)
	}
}

func cutN(n int) *int { return &n }

func cutOf(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
