package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/netns"
)

// TestInterfaces: a server with a public interface (eth0, to the usual
// client) and a private one (priv0, to a second client namespace). 80 is
// open on every interface, 5432 only on priv*: the public client cannot
// reach 5432, the private one can. Then a third interface (priv1, to a
// third client) appears while fwd runs and is covered by the priv*
// group without a reload.
func TestInterfaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	priv := e.addClientNS(t, "fwdp-", "priv0", "198.19.1")
	listen := func(port int) {
		ln := listenIn(t, e.server, "tcp4", fmt.Sprintf(":%d", port))
		echoServe(ln)
	}
	listen(80)
	listen(5432)
	rules := e.writeRules("rules.yaml", `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
  - name: private
    interfaces: ["priv*", eth9]
    ingress:
      - {proto: tcp, ports: 5432, from: [198.18.0.0/15]}
`)
	f := e.startFwd("--rules", rules, "--queues", "1")
	if log := f.log(); !strings.Contains(log, "interface eth9 matches no interface") {
		t.Errorf("no warning for eth9, which matches no interface:\n%s", log)
	}
	pub := func(port int) string { return net.JoinHostPort(server4, fmt.Sprint(port)) }
	parallel(
		func() { mustConnect(t, e.client, client4, pub(80)) },
		func() { mustNotConnect(t, e.client, client4, pub(5432)) },
		func() { mustConnect(t, priv, "198.19.1.2", "198.19.1.1:80") },
		func() { mustConnect(t, priv, "198.19.1.2", "198.19.1.1:5432") },
	)
	reloads := strings.Count(f.log(), "reload")
	later := e.addClientNS(t, "fwdq-", "priv1", "198.19.2")
	mustConnect(t, later, "198.19.2.2", "198.19.2.1:5432")
	mustConnect(t, later, "198.19.2.2", "198.19.2.1:80")
	if n := strings.Count(f.log(), "reload"); n != reloads {
		t.Errorf("fwd reloaded for the new interface (%d log lines on reloads, was %d)", n, reloads)
	}
}

// addClientNS makes a client namespace joined to the server by a veth
// whose server end is ifname: NET.1/24 on the server, NET.2/24 on the
// client.
func (e *env) addClientNS(t *testing.T, prefix, ifname, net3 string) string {
	t.Helper()
	ns := prefix + strings.TrimPrefix(e.client, "fwdc-")
	if err := netns.Add(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNetns(ns) })
	p := netip.MustParsePrefix
	if err := netns.AddVeth(
		netns.End{NS: ns, Name: "eth0", Addrs: []netip.Prefix{p(net3 + ".2/24")}},
		netns.End{NS: e.server, Name: ifname, Addrs: []netip.Prefix{p(net3 + ".1/24")}},
	); err != nil {
		t.Fatal(err)
	}
	return ns
}

func mustConnect(t *testing.T, ns, src, dst string) {
	t.Helper()
	c, err := dialIn(ns, "tcp4", src, dst, 10*time.Second) // SYN retries cover the interface scan (every second)
	if err != nil {
		t.Errorf("connect %s from %s: %v, want it to pass", dst, src, err)
		return
	}
	c.Close()
}

func mustNotConnect(t *testing.T, ns, src, dst string) {
	t.Helper()
	c, err := dialIn(ns, "tcp4", src, dst, 2*time.Second)
	if err == nil {
		c.Close()
		t.Errorf("connect %s from %s passed, want it dropped", dst, src)
		return
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("connect %s from %s: %v, want a timeout (silent drop)", dst, src, err)
	}
}
