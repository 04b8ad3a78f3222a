package fleet

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
)

// testLayout is the layout every test uses.
var testLayout = Layout{Prefix: DefaultPrefix}

// group is the value of policy/groups/NAME: a group allowing tcp port
// from peer.
func group(name, port, peer string) string {
	return "name: " + name + "\ningress:\n  - proto: tcp\n    ports: [" + port + "]\n    from: [" + peer + "]\n"
}

func put(t testing.TB, c *clientv3.Client, kvs ...string) int64 {
	t.Helper()
	var ops []clientv3.Op
	for i := 0; i < len(kvs); i += 2 {
		if kvs[i+1] == "" {
			ops = append(ops, clientv3.OpDelete(kvs[i]))
		} else {
			ops = append(ops, clientv3.OpPut(kvs[i], kvs[i+1]))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		t.Fatalf("txn: %v", err)
	}
	return resp.Header.Revision
}

func gkey(name string) string    { return testLayout.Key(KindGroup, name) }
func akey(host string) string    { return testLayout.Key(KindAssign, host) }
func hkey(host string) string    { return testLayout.Key(KindHost, host) }
func skey(host string) string    { return testLayout.Key(KindStatus, host) }
func assign(gs ...string) string { return `["` + strings.Join(gs, `","`) + `"]` }

func newClient(t testing.TB, eps []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// host is one syncer under test, its applied snapshots sent on got.
type host struct {
	s      *Syncer
	got    chan *Snapshot
	cancel context.CancelFunc
	done   chan struct{}
}

func startHost(t testing.TB, c *clientv3.Client, name string, tune func(*SyncConfig)) *host {
	t.Helper()
	h := &host{got: make(chan *Snapshot, 100), done: make(chan struct{})}
	cfg := SyncConfig{Client: c, Layout: testLayout, Host: name,
		Apply: func(s *Snapshot) error { h.got <- s; return nil },
		Log:   testLog(t)}
	if tune != nil {
		tune(&cfg)
	}
	h.s = NewSyncer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { defer close(h.done); _ = h.s.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *host) stop() {
	h.cancel()
	<-h.done
}

// wait returns the next applied snapshot for which ok holds, failing
// after 20 s.
func (h *host) wait(t testing.TB, what string, ok func(*Snapshot) bool) *Snapshot {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case s := <-h.got:
			if ok(s) {
				return s
			}
		case <-timeout:
			t.Fatalf("no snapshot %s within 20s; status %+v", what, h.s.Status())
		}
	}
}

// waitStatus polls the syncer's status until ok holds.
func (h *host) waitStatus(t testing.TB, what string, ok func(SyncStatus) bool) SyncStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := h.s.Status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never %s: %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hasPort reports whether the snapshot's group g allows tcp port.
func hasPort(s *Snapshot, g string, port uint16) bool {
	i := s.File.GroupIndex(g)
	if i < 0 {
		return false
	}
	for _, r := range s.File.Groups[i].Ingress {
		for _, p := range r.Ports {
			if p.Lo <= port && port <= p.Hi {
				return true
			}
		}
	}
	return false
}

// proxy is a TCP front for the etcd unix socket that a test can cut
// (a partition) and restore.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func startProxy(t testing.TB, s *etcdtest.Server) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: strings.TrimPrefix(s.Endpoints()[0], "unix://")}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("unix", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// Cut closes every connection and refuses new ones until Restore.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// testLog logs to the test's log.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
