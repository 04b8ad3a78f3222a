package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The queue watchdog against the real kernel queues: a test build of fwd
// (-tags fwdtest) freezes the reader of the queue that gets a new
// connection to a given port; fwd sees the queue stall (packets waiting
// in the kernel, none taken), restarts it and goes on answering, and
// exits 1, leaving its kernel rules (fail closed), when the queue keeps
// stalling.

// fwdTestBuild is fwd built with -tags fwdtest, once, next to fwd.
var fwdTestBuild struct {
	once sync.Once
	path string
	err  error
}

func fwdTestBin(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	fwdTestBuild.once.Do(func() {
		p := filepath.Join(filepath.Dir(fwdBin), "fwd-test")
		args := []string{"build", "-tags", "fwdtest", "-o", p}
		if raceEnabled {
			args = append(args, "-race")
		}
		build := exec.Command(goCommand(), append(args, "./cmd/fwd")...)
		build.Dir = repoRoot
		if out, err := build.CombinedOutput(); err != nil {
			fwdTestBuild.err = fmt.Errorf("go build -tags fwdtest ./cmd/fwd: %w\n%s", err, out)
			return
		}
		fwdTestBuild.path = p
	})
	if fwdTestBuild.err != nil {
		t.Fatal(fwdTestBuild.err)
	}
	return fwdTestBuild.path
}

const watchRules = `version: 1
groups:
  - name: svc
    ingress:
      - {proto: tcp, ports: [7000, 7001], from: [any]}
`

// echoOK connects to port and echoes once, within a second each.
func (e *env) echoOK(port string) error {
	c, err := dialIn(e.client, "tcp", client4, net.JoinHostPort(server4, port), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	ec := &echoConn{c: c, br: bufio.NewReader(c)}
	return ec.roundTrip()
}

// TestQueueWatchdogRestarts: a reader frozen in its handler is found
// stalled, its queue restarted, and new connections pass again; status
// and the counters say so.
func TestQueueWatchdogRestarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.bin = fwdTestBin(t)
	echoServe(listenIn(t, e.server, "tcp", ":7000"))
	echoServe(listenIn(t, e.server, "tcp", ":7001"))
	f := e.startFwd("--rules", e.writeRules("rules.yaml", watchRules), "--queues", "1",
		"--queue-watch-interval", "200ms", "--test-stall-port", "7001", "--test-stall-once")
	if err := e.echoOK("7000"); err != nil {
		t.Fatalf("before the stall: %v", err)
	}
	if st := e.status(); len(st.Queues) != 1 || st.Queues[0].Health != "ok" {
		t.Fatalf("status queues %+v: want queue 0 ok", st.Queues)
	}
	// This connection's first packet freezes the reader; its SYN is
	// retransmitted to the restarted queue and passes.
	frozen := make(chan error, 1)
	go func() {
		c, err := dialIn(e.client, "tcp", client4, net.JoinHostPort(server4, "7001"), 20*time.Second)
		if err == nil {
			c.Close()
		}
		frozen <- err
	}()
	f.waitLog(0, "queue reader stopped answering, restarting the queue")
	f.waitLog(0, "queue restarted")
	if err := e.echoOK("7000"); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if err := <-frozen; err != nil {
		t.Errorf("the connection whose packet froze the reader, retransmitted: %v", err)
	}
	st := e.status()
	if len(st.Queues) != 1 || st.Queues[0].Health != "restarted 1 time" || st.Queues[0].Restarts != 1 {
		t.Errorf("status queues %+v: want queue 0 restarted 1 time", st.Queues)
	}
	if n := counter(t, st, "queue_restarts"); n != 1 {
		t.Errorf("queue_restarts %d, want 1", n)
	}
	if out := e.mustFwctl("status", "verbose").stdout; !strings.Contains(out, "Queues: 0 restarted 1 time") {
		t.Errorf("status verbose:\n%s\nwant Queues: 0 restarted 1 time", out)
	}
}

// TestQueueWatchdogGivesUp: a queue that stalls again after three
// restarts within a minute makes fwd exit 1; its kernel rules stay, so
// new connections are dropped (fail closed) while it is gone.
func TestQueueWatchdogGivesUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.bin = fwdTestBin(t)
	echoServe(listenIn(t, e.server, "tcp", ":7000"))
	echoServe(listenIn(t, e.server, "tcp", ":7001"))
	f := e.startFwd("--rules", e.writeRules("rules.yaml", watchRules), "--queues", "1",
		"--queue-watch-interval", "100ms", "--test-stall-port", "7001")
	if err := e.echoOK("7000"); err != nil {
		t.Fatalf("before the stall: %v", err)
	}
	// New connections to 7001, one after another, freeze each new reader.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-f.done:
				return
			default:
			}
			if c, err := dialIn(e.client, "tcp", client4, net.JoinHostPort(server4, "7001"), 300*time.Millisecond); err == nil {
				c.Close()
			}
		}
	}()
	select {
	case <-f.done:
	case <-time.After(60 * time.Second):
		t.Fatal("fwd did not exit")
	}
	ee, ok := f.err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("fwd ended with %v, want exit status 1", f.err)
	}
	if !strings.Contains(f.log(), "queue watchdog: giving up") {
		t.Errorf("fwd's log does not say it gave up")
	}
	if rules := iptablesSave(t, e.server); !strings.Contains(rules, "NFQUEUE") {
		t.Errorf("fwd's kernel rules are gone after it gave up:\n%s", rules)
	}
	if err := e.echoOK("7000"); err == nil {
		t.Error("a new connection passed while fwd is gone: want it dropped (fail closed)")
	}
}
