package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func defaultRules() string { return filepath.Join(repoRoot, "rules", "default.yaml") }

// parallel runs the checks concurrently (each may wait out a two-second
// timeout) and returns when all are done.
func parallel(checks ...func()) {
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Go(c)
	}
	wg.Wait()
}

// TestDefaultRules: the shipped rules let 22, 80 and 443 in over both
// families and drop 8080 silently; a clean stop leaves the tables as they
// were, host rules included.
func TestDefaultRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	e.addHostRules()
	before := iptablesSave(t, e.server)
	f := e.startFwd("--rules", defaultRules(), "--queues", "2")
	var checks []func()
	for _, host := range []string{server4, server6} {
		checks = append(checks,
			func() { e.mustPass(url("http", host, 80), "") },
			func() { e.mustPass(url("https", host, 443), "") },
			func() { e.mustPass(url("http", host, 22), "") },
			func() { e.mustDrop(url("http", host, 8080), "") },
			func() {
				if err := e.ping(host, 5*time.Second); err != nil {
					t.Errorf("ping %s: %v, want a reply (the default rules allow echo)", host, err)
				}
			},
		)
	}
	parallel(checks...)
	during := iptablesSave(t, e.server)
	for _, want := range []string{"-A INPUT -j FWD-INPUT", "-A FWD-INPUT -j NFQUEUE --queue-balance 0:1", "-A FWD-SAVE"} {
		if strings.Count(during, want) != 2 { // once per family
			t.Errorf("running rules have %q %d times, want once per family:\n%s", want, strings.Count(during, want), during)
		}
	}
	if strings.Contains(during, "FWD-OUTPUT") {
		t.Errorf("egress hooked although the default rules omit egress:\n%s", during)
	}
	f.stop()
	if after := iptablesSave(t, e.server); after != before {
		t.Errorf("tables after a clean stop:\n%s\nbefore start:\n%s", after, before)
	}
	if !strings.Contains(f.log(), "msg=dropped") || !strings.Contains(f.log(), "port=8080") {
		t.Errorf("the 8080 drops were not logged:\n%s", f.log())
	}
}

// TestRuleForOneAddress: 8080 open to one client address only.
func TestRuleForOneAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	rules := e.writeRules("rules.yaml", fmt.Sprintf(`version: 1
groups:
  - name: one-client
    ingress:
      - {proto: tcp, ports: 8080, from: [%s, %s/128]}
`, client4, client6))
	e.startFwd("--rules", rules, "--queues", "1")
	parallel(
		func() { e.mustPass(url("http", server4, 8080), client4) },
		func() { e.mustDrop(url("http", server4, 8080), client4b) },
		func() { e.mustPass(url("http", server6, 8080), client6) },
		func() { e.mustDrop(url("http", server6, 8080), client6b) },
		func() { e.mustDrop(url("http", server4, 80), client4) },
		func() {
			if err := e.ping(server4, 2*time.Second); err == nil {
				t.Error("ping answered, want it dropped (no icmp rule)")
			}
		},
	)
}

// TestReload: SIGHUP swaps the rules; an established connection outlives
// the removal of the rule that let it in (tracked semantics); a bad file
// and an unchanged file change nothing.
func TestReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	open := `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 8080], from: [any]}
`
	rules := e.writeRules("rules.yaml", open)
	f := e.startFwd("--rules", rules, "--queues", "2")
	h4 := e.openHTTP("tcp4", server4, 8080)
	h6 := e.openHTTP("tcp6", server6, 8080)

	e.writeRules("rules.yaml", strings.Replace(open, "[80, 8080]", "[80]", 1))
	f.reload("msg=reloaded")
	parallel(
		func() { e.mustDrop(url("http", server4, 8080), "") },
		func() { e.mustPass(url("http", server4, 80), "") },
		func() {
			for _, h := range []*httpConn{h4, h6} {
				if err := h.get(); err != nil {
					t.Errorf("established connection after its rule was removed: %v", err)
				}
			}
		},
	)

	e.writeRules("rules.yaml", "version: 1\ngroups:\n  - name: web\n    ingress:\n      - {proto: tcp, ports: 99999, from: [any]}\n")
	line := f.reload("reload failed")
	if !strings.Contains(line, "rules.yaml:5:") {
		t.Errorf("reload error does not name file:line: %s", line)
	}
	parallel(
		func() { e.mustPass(url("http", server4, 80), "") },
		func() { e.mustDrop(url("http", server6, 8080), "") },
	)

	e.writeRules("rules.yaml", strings.Replace(open, "[80, 8080]", "[80]", 1))
	f.reload("rules unchanged")
	e.writeRules("rules.yaml", open)
	f.reload("msg=reloaded")
	e.mustPass(url("http", server6, 8080), "")
}

// TestServerOutboundGetsReplies: with egress omitted nothing outbound is
// queued, and the replies to the server's own connection pass (stateful).
func TestServerOutboundGetsReplies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startFwd("--rules", defaultRules(), "--queues", "1")
	for _, addr := range []string{net.JoinHostPort(client4, "9000"), net.JoinHostPort(client6, "9000")} {
		echoServe(listenIn(t, e.client, "tcp", addr))
		echo(t, e.server, addr, true)
	}
}

// TestEgressRestricted: when no group omits egress, outbound connections
// are queued too: an allowed one works (and gets its replies), another
// fails; inbound connections still get their replies out.
func TestEgressRestricted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	e.addHostRules()
	before := iptablesSave(t, e.server)
	rules := e.writeRules("rules.yaml", `version: 1
groups:
  - name: locked
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
    egress:
      - {proto: tcp, ports: 9000, to: [198.18.0.0/24, "2001:db8::/64"]}
`)
	f := e.startFwd("--rules", rules, "--queues", "2")
	if !strings.Contains(f.log(), "egress_hooked=true") {
		t.Errorf("egress not hooked:\n%s", f.log())
	}
	var checks []func()
	for _, c := range []string{client4, client6} {
		for _, port := range []string{"9000", "9001"} {
			addr := net.JoinHostPort(c, port)
			echoServe(listenIn(t, e.client, "tcp", addr))
			checks = append(checks, func() { echo(t, e.server, addr, port == "9000") })
		}
	}
	checks = append(checks,
		func() { e.mustPass(url("http", server4, 80), "") },
		func() { e.mustPass(url("http", server6, 80), "") },
	)
	parallel(checks...)
	if s := iptablesSave(t, e.server); strings.Count(s, "-A OUTPUT -j FWD-OUTPUT") != 2 {
		t.Errorf("OUTPUT not hooked once per family:\n%s", s)
	}

	// A reload that opens egress unhooks OUTPUT; one that restricts it
	// again hooks it back.
	locked, _ := os.ReadFile(rules)
	open := "version: 1\ngroups:\n  - name: open\n    ingress:\n      - {proto: tcp, ports: 80, from: [any]}\n"
	e.writeRules("rules.yaml", open)
	f.reload("msg=reloaded")
	if s := iptablesSave(t, e.server); strings.Contains(s, "FWD-OUTPUT") {
		t.Errorf("OUTPUT still hooked after egress was opened:\n%s", s)
	}
	echo(t, e.server, net.JoinHostPort(client4, "9001"), true)
	e.writeRules("rules.yaml", string(locked))
	f.reload("msg=reloaded")
	if s := iptablesSave(t, e.server); strings.Count(s, "-A OUTPUT -j FWD-OUTPUT") != 2 {
		t.Errorf("OUTPUT not hooked again once per family after egress was locked:\n%s", s)
	}
	echo(t, e.server, net.JoinHostPort(client6, "9001"), false)

	f.stop()
	if after := iptablesSave(t, e.server); after != before {
		t.Errorf("tables after a clean stop:\n%s\nbefore start:\n%s", after, before)
	}
}

// echo connects from ns to addr, sends a line and expects it back, or
// (want false) expects the connection to time out.
func echo(t *testing.T, ns, addr string, want bool) {
	t.Helper()
	c, err := dialIn(ns, "tcp", "", addr, 2*time.Second)
	if !want {
		if err == nil {
			c.Close()
			t.Errorf("outbound connection to %s succeeded, want it dropped", addr)
		} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Errorf("outbound connection to %s: %v, want a timeout", addr, err)
		}
		return
	}
	if err != nil {
		t.Errorf("outbound connection to %s: %v", addr, err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	msg := "hello " + addr + "\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Errorf("write to %s: %v", addr, err)
		return
	}
	buf := make([]byte, len(msg))
	if _, err := c.Read(buf); err != nil || string(buf) != msg {
		t.Errorf("reply from %s: %q, %v", addr, buf, err)
	}
}

// TestUDPOneWayQueuedOnce: a one-way UDP stream stays NEW in conntrack;
// the connmark saved after the first accept keeps the rest of it out of
// the queue. A dropped stream is queued packet after packet.
func TestUDPOneWayQueuedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rules := e.writeRules("rules.yaml", `version: 1
groups:
  - name: stream
    ingress:
      - {proto: udp, ports: 5353, from: [any]}
`)
	e.startFwd("--rules", rules, "--queues", "2")
	const n = 50
	for _, tc := range []struct {
		server string
		port   int
		allow  bool
	}{
		{server4, 5353, true}, {server6, 5353, true}, {server4, 5354, false},
	} {
		addr := net.JoinHostPort(tc.server, fmt.Sprint(tc.port))
		ln := listenUDPIn(t, e.server, addr)
		var sender net.Conn
		if err := do(e.client, func() (err error) { sender, err = net.Dial("udp", addr); return }); err != nil {
			t.Fatal(err)
		}
		before := e.queuedPackets()
		received := 0
		buf := make([]byte, 64)
		read := func(wait time.Duration) bool {
			ln.SetReadDeadline(time.Now().Add(wait))
			_, _, err := ln.ReadFrom(buf)
			if err == nil {
				received++
			}
			return err == nil
		}
		// The first packet alone, until it is through: packets sent
		// while it waits for its verdict would find no conntrack entry
		// yet and be queued too.
		sender.Write([]byte("first"))
		if tc.allow && !read(2*time.Second) {
			t.Fatalf("%s: first packet not delivered", addr)
		}
		for i := 1; i < n; i++ {
			sender.Write([]byte("next"))
		}
		for read(300 * time.Millisecond) {
		}
		sender.Close()
		queued := e.queuedPackets() - before
		if tc.allow {
			if received != n || queued != 1 {
				t.Errorf("%s: %d of %d packets delivered, %d queued; want all delivered, 1 queued", addr, received, n, queued)
			}
		} else if received != 0 || queued != n {
			t.Errorf("%s (not allowed): %d delivered, %d queued; want 0 delivered, %d queued", addr, received, queued, n)
		}
	}
}

// TestKill9FailClosed: with fwd killed, new connections are dropped and
// established ones continue; a restart leaves exactly one copy of the
// rules; a clean stop then restores the tables.
func TestKill9FailClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	e.addHostRules()
	before := iptablesSave(t, e.server)
	args := []string{"--rules", defaultRules(), "--queues", "2"}
	f := e.startFwd(args...)
	running := iptablesSave(t, e.server)
	h := e.openHTTP("tcp4", server4, 80)
	h6 := e.openHTTP("tcp6", server6, 80)
	f.kill9()
	parallel(
		func() { e.mustDrop(url("http", server4, 80), "") },
		func() { e.mustDrop(url("http", server6, 80), "") },
		func() {
			if err := h.get(); err != nil {
				t.Errorf("established connection after kill -9: %v", err)
			}
			if err := h6.get(); err != nil {
				t.Errorf("established v6 connection after kill -9: %v", err)
			}
		},
	)
	f2 := e.startFwd(args...)
	if again := iptablesSave(t, e.server); again != running {
		t.Errorf("rules after a restart over a kill -9:\n%s\nafter the first start:\n%s", again, running)
	}
	e.mustPass(url("http", server4, 80), "")
	if err := h.get(); err != nil {
		t.Errorf("established connection after the restart: %v", err)
	}
	f2.stop()
	if after := iptablesSave(t, e.server); after != before {
		t.Errorf("tables after a clean stop:\n%s\nbefore start:\n%s", after, before)
	}
}

// TestKill9FailOpen: with --fail-open, killing fwd lets every new
// connection in (the kernel bypasses the queue nobody listens to).
func TestKill9FailOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	f := e.startFwd("--rules", defaultRules(), "--queues", "2", "--fail-open")
	parallel(
		func() { e.mustPass(url("http", server4, 80), "") },
		func() { e.mustDrop(url("http", server4, 8080), "") },
	)
	f.kill9()
	parallel(
		func() { e.mustPass(url("http", server4, 80), "") },
		func() { e.mustPass(url("http", server4, 8080), "") },
		func() { e.mustPass(url("http", server6, 8080), "") },
	)
}
