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
	// A refusal is not a failed reload (issue 18).
	if st := fx.svc.Stats(); st.Failed != 0 || st.LastError != nil {
		t.Errorf("refused edits counted as failures: %+v", st)
	}
	if _, err := fx.svc.Reload(context.Background()); err != nil {
		t.Errorf("reload on read-only rules: %v", err)
	}
}

// TestReadOnlyAllowsDryRun (issue 18): a dry run changes nothing, so
// read-only rules answer it with the diff an edit would make.
func TestReadOnlyAllowsDryRun(t *testing.T) {
	fx := newFixture(t, baseRules)
	fx.svc.cfg.ReadOnly = "fwd runs on the shipped default rules"
	old := fx.h.Table()
	res, err := fx.svc.Add(context.Background(), AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"22"}}}}, true)
	if err != nil || !res.DryRun || !res.Changed || len(res.Added) != 1 || res.Diff == "" {
		t.Fatalf("dry-run add on read-only rules: %+v, %v", res, err)
	}
	if res, err := fx.svc.Delete(context.Background(), DeleteRequest{Numbers: []int{1}}, true); err != nil || len(res.Deleted) != 1 {
		t.Fatalf("dry-run delete on read-only rules: %+v, %v", res, err)
	}
	if got, _ := os.ReadFile(fx.path); string(got) != baseRules || fx.h.Table() != old {
		t.Errorf("a dry run changed the file or the table:\n%s", got)
	}
	if st := fx.svc.Stats(); st.Failed != 0 || st.OK != 0 {
		t.Errorf("dry runs counted: %+v", st)
	}
}

// TestDeleteNumbersAreTheLiveOnes (issue 16, bug 2): numbers mean the
// rules status showed, those of the live table. After a hand edit that
// was not reloaded, a delete by number is refused and changes nothing;
// after the reload it deletes the rule status now shows under it.
func TestDeleteNumbersAreTheLiveOnes(t *testing.T) {
	const live = "version: 1\ngroups:\n  - name: web\n    ingress:\n      - {proto: tcp, ports: 22, from: [any]}\n      - {proto: tcp, ports: [80, 443], from: [any]}\n"
	const edited = "version: 1\ngroups:\n  - name: web\n    ingress:\n      - {proto: tcp, ports: [80, 443], from: [any]}\n      - {proto: tcp, ports: 22, from: [any]}\n"
	fx := newFixture(t, live)
	ctx := context.Background()
	if got := fx.svc.Rules(nil)[0].Text; got != "tcp 22 from any" {
		t.Fatalf("status shows rule 1 as %q", got)
	}
	if err := os.WriteFile(fx.path, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		_, err := fx.svc.Delete(ctx, DeleteRequest{Numbers: []int{1}}, dry)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeStaleNumbers || !strings.Contains(e.Message, "fwctl reload") {
			t.Fatalf("delete 1 (dry run %v) after a hand edit: %v, want stale_numbers telling to reload", dry, err)
		}
	}
	if got, _ := os.ReadFile(fx.path); string(got) != edited || fx.h.swaps.Load() != 0 {
		t.Fatalf("a refused delete changed the file or the table:\n%s", got)
	}
	if fx.svc.Stats().Failed != 0 {
		t.Errorf("a refused delete counted as a failure: %+v", fx.svc.Stats())
	}
	// By rule, the delete does not depend on numbers: still allowed.
	if _, err := fx.svc.Delete(ctx, DeleteRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"9"}}}}, true); err == nil {
		t.Error("delete of a rule that is not there succeeded")
	} else if e := (*Error)(nil); errors.As(err, &e) && e.Code != CodeNotFound {
		t.Errorf("delete by rule after a hand edit: %v, want not_found", err)
	}

	if _, err := fx.svc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	shown := fx.svc.Rules(nil)[0].Text
	res, err := fx.svc.Delete(ctx, DeleteRequest{Numbers: []int{1}}, false)
	if err != nil || len(res.Deleted) != 1 || res.Deleted[0].Text != shown || shown != "tcp 80,443 from any" {
		t.Fatalf("delete 1 after reload: %+v, %v; want %q deleted", res, err, shown)
	}
	if rs := fx.svc.Rules(nil); len(rs) != 1 || rs[0].Text != "tcp 22 from any" {
		t.Errorf("live rules after delete 1: %+v, want tcp 22 only", rs)
	}
}

func TestCompile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "version: 1\ngroups:\n  - name: a\n    ingress:\n      - {proto: tcp, ports: 22, from: [198.51.100.7/24]}\n")
	bad := write("bad.yaml", "version: 1\ngroups:\n  - name: a\n    ingress:\n      - {proto: tcp, ports: 70000, from: [any]}\n      - {proto: tcp, ports: 22, from: [10.0.0.300]}\n")
	tab, err := Compile(good, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	f, _ := rules.Parse(good, data, rules.Options{})
	if tab.File().Hash != f.Hash || !tab.Match(filter.Key{Proto: 6, Peer: netip.MustParseAddr("198.51.100.9"), Port: 22}).Accepted() {
		t.Errorf("compiled table: hash %s, want %s, or 22 from the /24 not accepted", tab.File().Hash, f.Hash)
	}
	if w := Warnings(tab.File()); len(w) != 1 || !strings.HasPrefix(w[0], good+":5:40: CIDR 198.51.100.7/24 has host bits set") {
		t.Errorf("warnings %q, want one in the file:line:col form", w)
	}
	var list rules.ErrorList
	if _, err := Compile(bad, rules.Options{}); !errors.As(err, &list) || len(list) != 2 {
		t.Errorf("bad file: %v, want a rules.ErrorList of 2", err)
	}
	if _, err := Compile(filepath.Join(dir, "missing.yaml"), rules.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want one wrapping ErrNotExist", err)
	}
}

// TestFirstLoad: the daemon's first load is Reload into a target with no
// table; a bad file leaves it without one and is not logged (the caller
// reports it), and the first load is not counted as a reload.
func TestFirstLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(baseRules+"      - {proto: tcp, ports: 70000, from: [any]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &holder{}
	svc := NewService(ServiceConfig{Path: path, Target: h})
	_, err := svc.Reload(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInvalidRules || len(e.Details) != 1 || h.Table() != nil {
		t.Fatalf("bad first load: %v, table %v; want invalid_rules and no table", err, h.Table())
	}
	if err := os.WriteFile(path, []byte(baseRules), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Reload(context.Background())
	if err != nil || !res.Changed || h.Table() == nil || h.Table().File().Hash != res.Hash {
		t.Fatalf("first load: %+v, %v", res, err)
	}
	if st := svc.Stats(); st.OK != 0 {
		t.Errorf("stats after the first load: %+v, want no reload counted", st)
	}
}
