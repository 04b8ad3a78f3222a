package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/nfq"
)

const notifyRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
`

// notifySocket is systemd's side of Type=notify: a unix datagram socket
// that fwd finds in NOTIFY_SOCKET.
type notifySocket struct {
	t *testing.T
	c *net.UnixConn
}

func listenNotify(t *testing.T, path string) *notifySocket {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{t: t, c: c}
}

// next returns the next message other than a watchdog ping, and how
// many pings came before it.
func (s *notifySocket) next(what string) (msg string, pings int) {
	s.t.Helper()
	buf := make([]byte, 4096)
	for {
		s.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := s.c.Read(buf)
		if err != nil {
			s.t.Fatalf("waiting for %s: %v", what, err)
		}
		if m := string(buf[:n]); m != "WATCHDOG=1" {
			return m, pings
		}
		pings++
	}
}

func shortHash(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])[:12]
}

// TestSystemdNotify runs fwd as systemd would with Type=notify and
// WatchdogSec=: READY=1 comes only once the kernel rules and the queue
// are in place, with the rules' hash in STATUS=; a SIGHUP reload and a
// fwctl edit are each bracketed by RELOADING=1 and READY=1; WATCHDOG=1
// keeps coming; STOPPING=1 at the end.
func TestSystemdNotify(t *testing.T) {
	e := newEnv(t)
	sock := listenNotify(t, filepath.Join(e.dir, "notify"))
	t.Setenv("NOTIFY_SOCKET", filepath.Join(e.dir, "notify"))
	t.Setenv("WATCHDOG_USEC", "400000") // a ping every 200 ms
	rulesPath := e.writeRules("rules.yaml", notifyRules)
	f := e.launchFwd("--socket", e.socket(), "--rules", rulesPath, "--queues", "2")

	msg, _ := sock.next("READY=1")
	// At this moment the kernel rules and both queues must be live.
	saved := iptablesSave(t, e.server)
	kstats, err := inNS(e.server, "cat", nfq.ProcPath)
	if err != nil {
		t.Fatalf("read %s: %v", nfq.ProcPath, err)
	}
	if want := fmt.Sprintf("READY=1\nSTATUS=rules sha256 %s: 1 groups, 1 rules", shortHash(notifyRules)); msg != want {
		t.Fatalf("first message %q, want %q", msg, want)
	}
	for _, want := range []string{"-A INPUT -j FWD-INPUT", "-A FWD-INPUT -j NFQUEUE --queue-balance 0:1"} {
		if strings.Count(saved, want) != 2 { // iptables and ip6tables
			t.Errorf("at READY=1, iptables-save lacks %q in both families:\n%s", want, saved)
		}
	}
	if ks, err := nfq.ParseKernelStats(strings.NewReader(kstats)); err != nil || len(ks) != 2 {
		t.Errorf("at READY=1, the kernel has queues %+v (%v), want 2 bound", ks, err)
	}

	// A SIGHUP reload of a changed file.
	changed := notifyRules + "      - {proto: tcp, ports: 443, from: [any]}\n"
	writeAtomic(t, rulesPath, changed)
	f.signal(syscall.SIGHUP)
	wantReload(t, sock, fmt.Sprintf("READY=1\nSTATUS=rules sha256 %s: 1 groups, 2 rules", shortHash(changed)))

	// An edit through fwctl goes through the same path.
	e.mustFwctl("allow", "22/tcp")
	msg = wantReload(t, sock, "READY=1\nSTATUS=rules sha256 ")
	if !strings.HasSuffix(msg, ": 2 groups, 3 rules") {
		t.Errorf("after fwctl allow: %q, want 2 groups, 3 rules", msg)
	}

	// The watchdog keeps pinging while the queues are served.
	pings := 0
	buf := make([]byte, 4096)
	for pings < 3 {
		sock.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := sock.c.Read(buf)
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		if m := string(buf[:n]); m != "WATCHDOG=1" {
			t.Fatalf("unexpected message %q", m)
		}
		pings++
	}

	f.stop() // SIGTERM, and a clean exit
	if msg, _ := sock.next("STOPPING=1"); msg != "STOPPING=1" {
		t.Errorf("at SIGTERM: %q, want STOPPING=1", msg)
	}
}

// wantReload reads RELOADING=1 with its MONOTONIC_USEC, then READY=1
// whose message starts with want, and returns that message.
func wantReload(t *testing.T, sock *notifySocket, want string) string {
	t.Helper()
	msg, _ := sock.next("RELOADING=1")
	lines := strings.Split(msg, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("got %q, want RELOADING=1 and MONOTONIC_USEC=", msg)
	}
	msg, _ = sock.next("READY=1")
	if !strings.HasPrefix(msg, want) {
		t.Fatalf("after RELOADING=1: %q, want %q...", msg, want)
	}
	return msg
}
