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
	"github.com/fwd-project/fwd/internal/lifecycle"
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
	svc  *lifecycle.Service
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
	return &fixture{path: path, h: h, svc: lifecycle.NewService(lifecycle.ServiceConfig{Path: path, Target: h})}
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
		{"DELETE", "/v1/rules/sgr-000000000000", "", 404, CodeNotFound},
		{"DELETE", "/v1/rules/sgr-xyz", "", 400, CodeBadRequest},
		{"DELETE", "/v1/rules", `{"ids":["7"]}`, 400, CodeBadRequest},
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

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestDeleteStaleNumbers: a delete by number after a hand edit that was
// not reloaded is a 409 stale_numbers reply that tells to reload.
func TestDeleteStaleNumbers(t *testing.T) {
	fx := newFixture(t, baseRules)
	_, c := fx.serve(t, ServerConfig{})
	edited := baseRules + "      - {proto: tcp, ports: 22, from: [any]}\n"
	if err := os.WriteFile(fx.path, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := c.Delete(context.Background(), DeleteRequest{Numbers: []int{1}}, false)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeStaleNumbers || e.Status != http.StatusConflict || !strings.Contains(e.Message, "fwctl reload") {
		t.Fatalf("delete 1 after a hand edit: %#v, want 409 stale_numbers", err)
	}
	if got, _ := os.ReadFile(fx.path); string(got) != edited {
		t.Errorf("refused delete changed the file:\n%s", got)
	}
}

// TestDeleteByIDPath: DELETE /v1/rules/ID deletes the rule status shows
// with that ID, and is refused as a number is after a hand edit.
func TestDeleteByIDPath(t *testing.T) {
	fx := newFixture(t, baseRules)
	srv, c := fx.serve(t, ServerConfig{})
	st, err := c.Status(context.Background())
	if err != nil || len(st.Rules) != 1 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	id := st.Rules[0].ID
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", srv.Addr())
	}}}
	defer hc.CloseIdleConnections()
	del := func() (int, string) {
		req, _ := http.NewRequest("DELETE", "http://fwd/v1/rules/"+id, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	edited := baseRules + "      - {proto: tcp, ports: 22, from: [any]}\n"
	if err := os.WriteFile(fx.path, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	if code, body := del(); code != http.StatusConflict || !strings.Contains(body, string(CodeStaleNumbers)) {
		t.Fatalf("delete %s after a hand edit: %d %s, want 409 stale_numbers", id, code, body)
	}
	if err := os.WriteFile(fx.path, []byte(baseRules), 0o640); err != nil {
		t.Fatal(err)
	}
	if code, body := del(); code != http.StatusOK || !strings.Contains(body, `"id": "`+id+`"`) {
		t.Fatalf("delete %s: %d %s", id, code, body)
	}
	if got, _ := os.ReadFile(fx.path); strings.Contains(string(got), "443") {
		t.Errorf("the rule is still in the file:\n%s", got)
	}
}
