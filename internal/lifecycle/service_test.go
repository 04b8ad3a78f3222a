package lifecycle

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// holder is the daemon side as the engine has it: the live table in an
// atomic pointer.
type holder struct {
	p     atomic.Pointer[filter.Table]
	swaps atomic.Int64
}

func (h *holder) Table() *filter.Table { return h.p.Load() }
func (h *holder) Swap(t *filter.Table) { h.swaps.Add(1); h.p.Store(t) }

const baseRules = `# test rules
version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}   # http(s)
`

// fixture is a rules file, a holder with its table live and a service.
type fixture struct {
	path string
	h    *holder
	svc  *Service
}

func newFixture(t *testing.T, content string) *fixture {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	tab, err := Compile(path, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &holder{}
	h.p.Store(tab)
	return &fixture{path: path, h: h, svc: NewService(ServiceConfig{Path: path, Target: h})}
}

func accepts(tab *filter.Table, proto ipproto.Proto, port uint16) bool {
	return tab.Match(filter.Key{Proto: proto, Peer: netip.MustParseAddr("198.18.0.7"), Port: port}).Accepted()
}

func TestReload(t *testing.T) {
	fx := newFixture(t, baseRules)
	ctx := context.Background()
	old := fx.h.Table()

	res, err := fx.svc.Reload(ctx)
	if err != nil || res.Changed || !strings.Contains(res.Message, "unchanged") {
		t.Fatalf("reload of the live file: %+v, %v; want unchanged", res, err)
	}
	if fx.h.Table() != old {
		t.Fatal("unchanged reload swapped the table")
	}

	bad := baseRules + "      - {proto: tcp, ports: 70000, from: [any]}\n      - {proto: udp, from: [1.2.3]}\n"
	if err := os.WriteFile(fx.path, []byte(bad), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = fx.svc.Reload(ctx)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInvalidRules || len(e.Details) != 2 {
		t.Fatalf("bad file: err = %#v, want invalid_rules with 2 details", err)
	}
	for i, want := range []string{":7:", ":8:"} {
		if !strings.Contains(e.Details[i], fx.path+want) {
			t.Errorf("detail %d = %q, want %s%s", i, e.Details[i], fx.path, want)
		}
	}
	if fx.h.Table() != old {
		t.Fatal("failed reload changed the table")
	}

	good := baseRules + "      - {proto: udp, ports: 53, from: [any]}\n"
	if err := os.WriteFile(fx.path, []byte(good), 0o640); err != nil {
		t.Fatal(err)
	}
	res, err = fx.svc.Reload(ctx)
	if err != nil || !res.Changed || res.Rules != 2 {
		t.Fatalf("good file: %+v, %v", res, err)
	}
	if !accepts(fx.h.Table(), ipproto.UDP, 53) || fx.h.Table().File().Hash != res.Hash {
		t.Fatal("new table not live")
	}
	st := fx.svc.Stats()
	if st.OK != 1 || st.Failed != 1 || st.Unchanged != 1 || st.LastError == nil || st.LastError.Code != CodeInvalidRules {
		t.Errorf("stats = %+v", st)
	}
}

func TestPrepareFailureChangesNothing(t *testing.T) {
	fx := newFixture(t, baseRules)
	fx.svc.cfg.Prepare = func(context.Context, *filter.Table) error { return errors.New("iptables-restore: boom") }
	old := fx.h.Table()
	_, err := fx.svc.Add(context.Background(), AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"22"}}}}, false)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeApplyFailed {
		t.Fatalf("err = %v, want apply_failed", err)
	}
	if got, _ := os.ReadFile(fx.path); string(got) != baseRules || fx.h.Table() != old {
		t.Errorf("a failed prepare changed the file or the table:\n%s", got)
	}
}

// TestWriteFailureChangesNothing: when the rules file cannot be replaced
// (here its directory is swapped for a file just before the write), the
// table is not swapped.
func TestWriteFailureChangesNothing(t *testing.T) {
	fx := newFixture(t, baseRules)
	dir := filepath.Dir(fx.path)
	moved := dir + ".moved"
	t.Cleanup(func() { os.Remove(dir); os.RemoveAll(moved) })
	fx.svc.cfg.Prepare = func(context.Context, *filter.Table) error {
		if err := os.Rename(dir, moved); err != nil {
			return err
		}
		return os.WriteFile(dir, nil, 0o600)
	}
	old := fx.h.Table()
	_, err := fx.svc.Add(context.Background(), AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"22"}}}}, false)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeWriteFailed {
		t.Fatalf("err = %v, want write_failed", err)
	}
	if fx.h.Table() != old || fx.h.swaps.Load() != 0 {
		t.Error("table swapped after a failed write")
	}
	if got, _ := os.ReadFile(filepath.Join(moved, "rules.yaml")); string(got) != baseRules {
		t.Errorf("rules file changed:\n%s", got)
	}
	if fx.svc.Stats().Failed != 1 {
		t.Errorf("failed count = %d, want 1", fx.svc.Stats().Failed)
	}
}

func TestUnifiedDiff(t *testing.T) {
	got := unifiedDiff("f", []byte("a\nb\nc\nd\ne\nf\ng\nh\n"), []byte("a\nb\nc\nd\nX\nY\nf\ng\nh\n"))
	want := "--- f\n+++ f\n@@ -2,7 +2,8 @@\n b\n c\n d\n-e\n+X\n+Y\n f\n g\n h\n"
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if unifiedDiff("f", []byte("a\n"), []byte("a\n")) != "" {
		t.Error("diff of equal texts is not empty")
	}
}

// TestReadOnlyRefusesEdits: a daemon on its shipped default rules refuses
// edits (they would rewrite the shipped file) but still reloads.
func TestReadOnlyRefusesEdits(t *testing.T) {
	fx := newFixture(t, baseRules)
	fx.svc.cfg.ReadOnly = "fwd runs on the shipped default rules"
	old := fx.h.Table()
	_, err := fx.svc.Add(context.Background(), AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"22"}}}}, false)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeReadOnly || e.Message != "fwd runs on the shipped default rules" {
		t.Fatalf("add: err = %v, want read_only", err)
	}
	if _, err := fx.svc.Delete(context.Background(), DeleteRequest{Numbers: []int{1}}, false); !errors.As(err, &e) || e.Code != CodeReadOnly {
		t.Fatalf("delete: err = %v, want read_only", err)
	}
	if got, _ := os.ReadFile(fx.path); string(got) != baseRules || fx.h.Table() != old {
		t.Errorf("a refused edit changed the file or the table:\n%s", got)
	}
	if _, err := fx.svc.Reload(context.Background()); err != nil {
		t.Errorf("reload on read-only rules: %v", err)
	}
}
