package lifecycle

import (
	"context"
	"errors"
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// TestInstall: a file built elsewhere (fleet mode) goes live through
// Prepare and the swap; the same hash again is a no-op; a failing
// Prepare keeps the live table; a NoReload service refuses reloads and
// edits name the same reason through ReadOnly.
func TestInstall(t *testing.T) {
	ctx := context.Background()
	h := &holder{}
	prepared := 0
	var prepErr error
	svc := NewService(ServiceConfig{Path: "fleet", Target: h, NoReload: "fleet mode", ReadOnly: "fleet mode",
		Prepare: func(context.Context, *filter.Table) error { prepared++; return prepErr }})
	f := parse(t, baseRules)
	f.Hash = "h1"
	res, err := svc.Install(ctx, f, "snapshot 1")
	if err != nil || !res.Changed || h.Table() == nil || !accepts(h.Table(), ipproto.TCP, 443) || prepared != 1 {
		t.Fatalf("first install: %+v, %v (prepared %d)", res, err, prepared)
	}
	if res, err := svc.Install(ctx, f, "snapshot 1 again"); err != nil || res.Changed || h.swaps.Load() != 1 {
		t.Fatalf("same hash: %+v, %v, %d swaps; want a no-op", res, err, h.swaps.Load())
	}
	g := parse(t, "version: 1\ngroups:\n  - name: web\n    ingress:\n      - {proto: tcp, ports: [22], from: [any]}\n")
	g.Hash = "h2"
	prepErr = errors.New("no kernel")
	if _, err := svc.Install(ctx, g, "snapshot 2"); err == nil || !accepts(h.Table(), ipproto.TCP, 443) || accepts(h.Table(), ipproto.TCP, 22) {
		t.Fatalf("install with a failing prepare: %v; want an error and the first table kept", err)
	}
	var e *Error
	if _, err := svc.Reload(ctx); !errors.As(err, &e) || e.Code != CodeReadOnly || e.Message != "fleet mode" {
		t.Fatalf("reload of a NoReload service: %v, want %s", err, CodeReadOnly)
	}
}

func parse(t *testing.T, src string) *rules.File {
	t.Helper()
	f, err := rules.Parse("t", []byte(src), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}
