package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// The network-ACL commands against the real daemon: fwctl deny keeps a
// peer out and cuts its established connections (conntrack revoke), an
// allow entry cuts nothing, and a ban with --expire lifts itself, across
// a restart of fwd.

const aclRules = `version: 1
groups:
  - name: svc
    ingress:
      - {proto: tcp, ports: 7000, from: [any]}
`

// echoConn is a connection to the echo server from one client address.
type echoConn struct {
	c  net.Conn
	br *bufio.Reader
}

func (e *env) dialEcho(src string) (*echoConn, error) {
	c, err := dialIn(e.client, "tcp", src, net.JoinHostPort(server4, "7000"), time.Second)
	if err != nil {
		return nil, err
	}
	e.t.Cleanup(func() { c.Close() })
	return &echoConn{c: c, br: bufio.NewReader(c)}, nil
}

// roundTrip writes a line and reads it back within a second.
func (ec *echoConn) roundTrip() error {
	ec.c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprintln(ec.c, "ping"); err != nil {
		return err
	}
	line, err := ec.br.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("echo %q", line)
	}
	return nil
}

func (e *env) mustEcho(src string) *echoConn {
	e.t.Helper()
	ec, err := e.dialEcho(src)
	if err == nil {
		err = ec.roundTrip()
	}
	if err != nil {
		e.t.Fatalf("echo from %s: %v", src, err)
	}
	return ec
}

func (e *env) mustNotConnect(src string) {
	e.t.Helper()
	if ec, err := e.dialEcho(src); err == nil {
		ec.c.Close()
		e.t.Fatalf("connect from %s passed, want it dropped", src)
	}
}

// TestDenyCutsEstablished: an allow entry leaves established
// connections alone; a deny entry keeps its peer out and cuts the
// peer's established connection, and only that one.
func TestDenyCutsEstablished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	echoServe(listenIn(t, e.server, "tcp", ":7000"))
	e.startFwd("--rules", e.writeRules("rules.yaml", aclRules))
	a := e.mustEcho(client4)
	b := e.mustEcho(client4b)

	r := e.mustFwctl("insert", "50", "allow", "from", client4)
	if strings.Contains(r.stdout, "Cut") {
		t.Errorf("an allow entry cut connections:\n%s", r)
	}
	if err := a.roundTrip(); err != nil {
		t.Fatalf("after an allow entry, the established connection: %v", err)
	}

	r = e.mustFwctl("deny", "from", client4b)
	if !strings.Contains(r.stdout, "Entry added: acl ingress 100 deny all from "+client4b) || !strings.Contains(r.stdout, "Cut 1 established connection it matched") {
		t.Errorf("%s\nwant entry 100 added and one connection cut", r)
	}
	if err := b.roundTrip(); err == nil {
		t.Fatal("the denied peer's established connection still echoes")
	}
	e.mustNotConnect(client4b)
	if err := a.roundTrip(); err != nil {
		t.Fatalf("the other peer's established connection was cut: %v", err)
	}
	e.mustEcho(client4)

	e.mustFwctl("delete", "deny", "from", client4b)
	e.mustEcho(client4b)
}

// TestDenyExpiresAcrossRestart: a ban with --expire is written to the
// rules file, so a restarted fwd keeps it, and fwd lifts it by itself at
// its time although the file does not change.
func TestDenyExpiresAcrossRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	echoServe(listenIn(t, e.server, "tcp", ":7000"))
	path := e.writeRules("rules.yaml", aclRules)
	f := e.startFwd("--rules", path)
	e.mustFwctl("deny", "from", client4, "--expire", "8s", "comment", "test ban")
	e.mustNotConnect(client4)
	f.stop()

	f = e.startFwd("--rules", path)
	st := e.status()
	if len(st.ACL) != 1 || st.ACL[0].Expires == "" || st.ACL[0].Expired {
		t.Fatalf("after the restart, status acl %+v: want the ban, not expired yet", st.ACL)
	}
	if !strings.Contains(e.mustFwctl("status").stdout, "# until "+st.ACL[0].Expires+"; test ban") {
		t.Errorf("status does not show the ban's expiry")
	}
	e.mustNotConnect(client4)
	f.waitLog(0, "acl entries expired")
	e.mustEcho(client4)
	st = e.status()
	if len(st.ACL) != 1 || !st.ACL[0].Expired {
		t.Errorf("status acl %+v: want the entry shown expired", st.ACL)
	}
	if !strings.Contains(e.mustFwctl("status").stdout, "# expired "+st.ACL[0].Expires) {
		t.Errorf("status does not show the entry as expired")
	}
}
