package e2e

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// Revoke against the real daemon and kernel: a deleted rule keeps its
// established connections (AWS's tracked behaviour) unless the change
// is asked to revoke, which deletes the conntrack entries of the flows
// the new rules no longer allow, and only those.
//
// The rules restrict egress, so that fwd judges the host's own packets
// too: with egress open, a packet the host sends first on a cut
// connection (here the echo server's retransmission of an echo whose
// ACK rode on the dropped packet) is let out unjudged and makes a new
// conntrack entry, in whose reply direction the peer's packets pass
// again (see "Changing rules safely" in the README).

const revokeRules = `version: 1
groups:
  - name: svc
    ingress:
      - {proto: tcp, ports: 7000, from: [any]}
      - {proto: tcp, ports: 7001, from: [any]}
    egress: []
`

// dialEchoPort is a connection to the echo server on port, from client4,
// that has echoed once.
func (e *env) dialEchoPort(port string) *echoConn {
	e.t.Helper()
	c, err := dialIn(e.client, "tcp", client4, net.JoinHostPort(server4, port), time.Second)
	if err != nil {
		e.t.Fatalf("connect to port %s: %v", port, err)
	}
	e.t.Cleanup(func() { c.Close() })
	ec := &echoConn{c: c, br: bufio.NewReader(c)}
	if err := ec.roundTrip(); err != nil {
		e.t.Fatalf("echo on port %s: %v", port, err)
	}
	return ec
}

// TestRevokeCutsWhatRulesNoLongerAllow: after a plain delete the
// connection to the deleted port goes on; reload --revoke, and delete
// --revoke, cut it within a second (roundTrip's deadline), while the
// connection to the port still allowed goes on.
func TestRevokeCutsWhatRulesNoLongerAllow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	echoServe(listenIn(t, e.server, "tcp", ":7000"))
	echoServe(listenIn(t, e.server, "tcp", ":7001"))
	e.startFwd("--rules", e.writeRules("rules.yaml", revokeRules))
	a := e.dialEchoPort("7000")
	b := e.dialEchoPort("7001")

	r := e.mustFwctl("delete", "allow", "7000/tcp")
	if strings.Contains(r.stdout, "Cut") {
		t.Errorf("a plain delete cut connections:\n%s", r)
	}
	if err := a.roundTrip(); err != nil {
		t.Fatalf("after a plain delete, the established connection to the deleted port: %v", err)
	}
	e.mustFwctl("status") // a moment for a cut to show, were there one
	if err := a.roundTrip(); err != nil {
		t.Fatalf("after a plain delete, the established connection to the deleted port, again: %v", err)
	}

	r = e.mustFwctl("reload", "--revoke")
	if !strings.Contains(r.stdout, "Cut 1 established connection the new rules no longer allow") {
		t.Errorf("reload --revoke:\n%s\nwant one connection cut", r)
	}
	if err := a.roundTrip(); err == nil {
		t.Fatal("after reload --revoke, the connection to the deleted port still echoes")
	}
	if err := b.roundTrip(); err != nil {
		t.Fatalf("reload --revoke cut the connection to the port still allowed: %v", err)
	}
	// a's unanswered data would be retransmitted, and once 7000 is
	// allowed again below, conntrack would pick the connection up mid-stream
	// and the next revoke would count it too: reset it here.
	resetConn(a.c)

	e.mustFwctl("allow", "7000/tcp")
	a2 := e.dialEchoPort("7000")
	r = e.mustFwctl("delete", "--revoke", "allow", "7000/tcp")
	if !strings.Contains(r.stdout, "Cut 1 established connection the new rules no longer allow") {
		t.Errorf("delete --revoke:\n%s\nwant one connection cut", r)
	}
	if err := a2.roundTrip(); err == nil {
		t.Fatal("after delete --revoke, the connection to the deleted port still echoes")
	}
	if err := b.roundTrip(); err != nil {
		t.Fatalf("delete --revoke cut the connection to the port still allowed: %v", err)
	}
	if _, err := dialIn(e.client, "tcp", client4, net.JoinHostPort(server4, "7000"), time.Second); err == nil {
		t.Fatal("a new connection to the deleted port passed")
	}
}

// resetConn closes c with an RST (no lingering FIN to retransmit).
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
