package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	f, err := rules.Load(path, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := filter.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	h := &holder{}
	h.p.Store(tab)
	return &fixture{path: path, h: h, svc: NewService(ServiceConfig{Path: path, Target: h})}
}

func (fx *fixture) serve(t *testing.T, cfg ServerConfig) (*Server, *Client) {
	t.Helper()
	cfg.Service = fx.svc
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(t.TempDir(), "fwd.sock")
	}
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	c, err := Dial(cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return srv, c
}

func accepts(tab *filter.Table, proto ipproto.Proto, port uint16) bool {
	return tab.Match(filter.Key{Proto: proto, Peer: mustAddr("198.18.0.7"), Port: port}).Accepted()
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

func TestEditsThroughTheSocket(t *testing.T) {
	fx := newFixture(t, baseRules)
	_, c := fx.serve(t, ServerConfig{})
	ctx := context.Background()

	res, err := c.Add(ctx, AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"8080"}, Description: "alt http"}}}, true)
	if err != nil || !res.DryRun || !strings.Contains(res.Diff, "+      - {proto: tcp, ports: 8080, from: [any], description: alt http}") {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if got, _ := os.ReadFile(fx.path); string(got) != baseRules || fx.h.swaps.Load() != 0 {
		t.Fatal("dry run changed something")
	}
	res, err = c.Add(ctx, AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"8080"}}}}, false)
	if err != nil || !res.Changed || len(res.Added) != 1 || res.Added[0].Number != 2 || res.Added[0].Group != "local" {
		t.Fatalf("add: %+v, %v", res, err)
	}
	if !accepts(fx.h.Table(), ipproto.TCP, 8080) {
		t.Fatal("8080 not open in the live table")
	}
	data, _ := os.ReadFile(fx.path)
	if !strings.HasPrefix(string(data), baseRules) || !strings.Contains(string(data), "# http(s)") {
		t.Fatalf("file lost its text:\n%s", data)
	}
	// The same rule again is skipped, and so is one the file holds already.
	res, err = c.Add(ctx, AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"8080"}}, {Proto: "tcp", Ports: []string{"443", "80"}}}}, false)
	if err != nil || res.Changed || len(res.Skipped) != 2 || res.Skipped[1].Existing.Number != 1 {
		t.Fatalf("add existing: %+v, %v", res, err)
	}
	// Delete by match, then by number.
	res, err = c.Delete(ctx, DeleteRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"8080"}}}}, false)
	if err != nil || len(res.Deleted) != 1 || accepts(fx.h.Table(), ipproto.TCP, 8080) {
		t.Fatalf("delete: %+v, %v", res, err)
	}
	_, err = c.Delete(ctx, DeleteRequest{Numbers: []int{9}}, false)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeNotFound || e.Status != http.StatusNotFound {
		t.Fatalf("delete 9: %v, want not_found", err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Status != "active" || len(st.Rules) != 1 || st.Rules[0].Hits != nil || st.Reloads.OK != 2 || st.DefaultOutgoing != "allow" {
		t.Fatalf("status: %+v, %v", st, err)
	}
	chk, err := c.Check(ctx, Query{Dir: "in", Proto: "tcp", Src: "198.18.0.9", Dport: ptr(443)})
	if err != nil || chk.Verdict != "accept" || chk.Group != "web" || chk.Rule == nil || *chk.Rule != 0 || chk.Number != 1 {
		t.Fatalf("check: %+v, %v", chk, err)
	}
}

func ptr(n int) *int { return &n }

// TestConcurrentEdits: 50 clients adding distinct ports at once all land,
// in the file and in the live table.
func TestConcurrentEdits(t *testing.T) {
	fx := newFixture(t, baseRules)
	srv, _ := fx.serve(t, ServerConfig{})
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(srv.Addr())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_, err = c.Add(context.Background(), AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{fmt.Sprint(10000 + i)}}}}, false)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f, err := rules.Load(fx.path, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.Groups[f.GroupIndex("local")].Ingress); got != n {
		t.Errorf("file holds %d added rules, want %d", got, n)
	}
	for i := range n {
		if !accepts(fx.h.Table(), ipproto.TCP, uint16(10000+i)) {
			t.Errorf("port %d not open in the live table", 10000+i)
		}
	}
	if fx.h.Table().File().Hash != f.Hash {
		t.Error("live table is not the file's")
	}
}

func TestSocketFile(t *testing.T) {
	fx := newFixture(t, baseRules)
	sock := filepath.Join(t.TempDir(), "run", "fwd.sock")
	srv, _ := fx.serve(t, ServerConfig{Socket: sock})
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, %v; want a socket with mode 0600", fi.Mode(), err)
	}
	// A second server on a live socket is refused and leaves it alone.
	if _, err := Listen(ServerConfig{Socket: sock, Service: fx.svc}); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second Listen: %v", err)
	}
	if _, err := Dial(srv.Addr()); err != nil {
		t.Fatalf("socket gone after a refused Listen: %v", err)
	}
}

func TestStaleSocket(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the socket file stays, nothing listens: a crashed fwd
	fx := newFixture(t, baseRules)
	fx.serve(t, ServerConfig{Socket: stale})

	regular := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(ServerConfig{Socket: regular, Service: fx.svc}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "x" {
		t.Error("regular file touched")
	}
}

func TestHTTPErrors(t *testing.T) {
	fx := newFixture(t, baseRules)
	srv, _ := fx.serve(t, ServerConfig{MaxBody: 1024})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", srv.Addr())
	}}}
	defer hc.CloseIdleConnections()
	tests := []struct {
		method, path, body string
		status             int
		code               Code
	}{
		{"GET", "/v2/status", "", 404, CodeNotFound},
		{"DELETE", "/v1/status", "", 405, CodeMethod},
		{"POST", "/v1/rules", `{"rules":[{"proto":"tcp","prots":["1"]}]}`, 400, CodeBadRequest},
		{"POST", "/v1/rules", `{"rules":[{"proto":"tcp","ports":["1"]}]} {}`, 400, CodeBadRequest},
		{"POST", "/v1/rules", `{"rules":[{"proto":"tcp","ports":["99999"]}]}`, 400, CodeBadRequest},
		{"POST", "/v1/rules", `{"rules":[{"proto":"tcp","description":"` + strings.Repeat("x", 2000) + `"}]}`, 413, CodeTooLarge},
		{"POST", "/v1/rules", `{"rules":[{"proto":"tcp","peers":["nolist"]}]}`, 400, CodeBadRequest},
		{"POST", "/v1/rules?dry_run=maybe", `{}`, 400, CodeBadRequest},
		{"DELETE", "/v1/rules/x", "", 400, CodeBadRequest},
		{"DELETE", "/v1/rules/7", "", 404, CodeNotFound},
		{"POST", "/v1/check", `{"dir":"in","proto":"tcp","src":"1.2.3"}`, 400, CodeBadRequest},
		{"POST", "/v1/check", `{"dir":"in","proto":6,"src":"198.18.0.1","dport":80,"extra":1}`, 400, CodeBadRequest},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, "http://fwd"+tc.path, strings.NewReader(tc.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), `"code": "`+string(tc.code)+`"`) {
			t.Errorf("%s %s: %d %s; want %d %s", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.code)
		}
	}
}

func TestDialErrors(t *testing.T) {
	_, err := Dial(filepath.Join(t.TempDir(), "none.sock"))
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("Dial of a missing socket: %v, want ErrUnreachable", err)
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

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

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
