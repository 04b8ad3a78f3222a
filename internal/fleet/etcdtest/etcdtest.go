// Package etcdtest runs a real etcd server, Debian's /usr/bin/etcd
// (package etcd-server), for tests: the server users run, its 3.4 watch
// behaviour included, rather than an embedded one.
//
// The server listens on a unix socket in the test's temporary folder, so
// processes in network namespaces with no route out reach it through the
// filesystem.
package etcdtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binary is where Debian's etcd-server package puts the server.
const Binary = "/usr/bin/etcd"

// Server is one etcd member started by Start.
type Server struct {
	t       testing.TB
	dir     string
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

// Start starts a one-member etcd in a temporary folder and stops it when
// the test ends. Without the binary the test skips, except under CI=true,
// where it fails: CI installs etcd-server (testdata/install-deps.sh).
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("etcd server missing under CI=true: %v (testdata/install-deps.sh installs etcd-server)", err)
		}
		t.Skipf("needs the etcd server %s (apt-get install etcd-server, or make deps)", Binary)
	}
	s := &Server{t: t, dir: t.TempDir()}
	s.logPath = filepath.Join(s.dir, "etcd.log")
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Endpoints are the client endpoints (one unix socket, an absolute path).
func (s *Server) Endpoints() []string {
	return []string{"unix://" + filepath.Join(s.dir, "localhost:2379")}
}

// Dir is the server's folder (its data, log and sockets).
func (s *Server) Dir() string { return s.dir }

// Start starts the server on its data folder (again, after Stop) and
// waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("etcdtest: Start while running")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	// The unix socket "localhost:2379" is created in the working folder.
	cmd := exec.Command(Binary,
		"--name", "t",
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", "unix://localhost:2379",
		"--advertise-client-urls", "unix://localhost:2379",
		"--listen-peer-urls", "unix://localhost:2380",
		"--initial-advertise-peer-urls", "unix://localhost:2380",
		"--initial-cluster", "t=unix://localhost:2380",
		"--unsafe-no-fsync",
	)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start etcd: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)
	s.waitReady()
}

func (s *Server) waitReady() {
	s.t.Helper()
	c := s.newClient()
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Get(ctx, "health-probe")
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("etcd exited at start:\n%s", s.log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("etcd not ready after 20s: %v\n%s", err, s.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) log() string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and waits for
// it; the data stays for Start. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

func (s *Server) newClient() *clientv3.Client {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   s.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		s.t.Fatalf("etcd client: %v", err)
	}
	return c
}

// Client is a client of the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	c := s.newClient()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Compact compacts the server's history up to rev (physically, waiting
// for it), so a watch from before rev fails with ErrCompacted.
func (s *Server) Compact(t testing.TB, rev int64) {
	t.Helper()
	c := s.newClient()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("compact at %d: %v", rev, err)
	}
}
