package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/flowlog/flowlogtest"
)

// dialFrom connects from the client namespace, from a chosen source
// address and port, so that the flow log's line can be told apart.
func (e *env) dialFrom(network, src string, sport int, dst string, dport int, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := do(e.client, func() error {
		la := netip.AddrPortFrom(netip.MustParseAddr(src), uint16(sport))
		d := net.Dialer{Timeout: timeout}
		if strings.HasPrefix(network, "udp") {
			d.LocalAddr = net.UDPAddrFromAddrPort(la)
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(la)
		}
		var err error
		c, err = d.Dial(network, net.JoinHostPort(dst, fmt.Sprint(dport)))
		return err
	})
	return c, err
}

// TestFlowLog: with --flow-log, the connections the client opens, allowed
// and denied, over both families and three protocols, are lines an AWS
// VPC flow log reader accepts, ACCEPT or REJECT with the packet's
// addresses, ports and protocol number. The drop log on stderr stays, and
// status verbose counts what was written. A flow log fwd cannot open
// stops it at start, with nothing installed.
func TestFlowLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	rules := e.writeRules("rules.yaml", `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
      - {proto: icmp, icmp: {type: 8}, from: [any]}
`)
	path := filepath.Join(e.dir, "flows.log")
	f := e.startFwd("--rules", rules, "--queues", "1", "--flow-log", path)

	type want struct {
		src    string
		sport  int
		dst    string
		dport  int
		proto  int
		action string
	}
	var wants []want
	// Allowed TCP, both families.
	for i, c := range []struct{ src, dst string }{{client4, server4}, {client6, server6}} {
		sport := 42000 + i
		conn, err := e.dialFrom("tcp", c.src, sport, c.dst, 80, 5*time.Second)
		if err != nil {
			t.Fatalf("connect %s to %s:80: %v, want it allowed", c.src, c.dst, err)
		}
		conn.Close()
		wants = append(wants, want{c.src, sport, c.dst, 80, 6, "ACCEPT"})
	}
	// Denied TCP, both families: the SYN is dropped (and retried).
	for i, c := range []struct{ src, dst string }{{client4b, server4}, {client6b, server6}} {
		sport := 43000 + i
		if conn, err := e.dialFrom("tcp", c.src, sport, c.dst, 8080, time.Second); err == nil {
			conn.Close()
			t.Fatalf("connect %s to %s:8080 passed, want it dropped", c.src, c.dst)
		}
		wants = append(wants, want{c.src, sport, c.dst, 8080, 6, "REJECT"})
	}
	// Denied UDP: one datagram.
	u, err := e.dialFrom("udp", client4, 41000, server4, 9001, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("flow log"))
	u.Close()
	wants = append(wants, want{client4, 41000, server4, 9001, 17, "REJECT"})
	// Allowed ICMP echo: ports are 0.
	if err := e.ping(server4, 5*time.Second); err != nil {
		t.Fatalf("ping: %v, want a reply", err)
	}
	wants = append(wants, want{client4, 0, server4, 0, 1, "ACCEPT"})

	// The UDP datagram's verdict may still be on its way.
	deadline := time.Now().Add(10 * time.Second)
	for counter(t, e.status(), "flow_log_written") < uint64(len(wants)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	verbose := e.mustFwctl("status", "verbose").stdout
	for _, c := range []string{"flow_log_written", "flow_log_skipped 0", "flow_log_dropped 0", "flow_log_errors 0"} {
		if !strings.Contains(verbose, c) {
			t.Errorf("status verbose lacks %q:\n%s", c, verbose)
		}
	}
	f.stop() // flushes the flow log

	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	lines, err := flowlogtest.ParseAll(file)
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("the AWS reader refuses fwd's flow log: %v\n%s", err, b)
	}
	for _, w := range wants {
		found := false
		for _, l := range lines {
			if l.Src == netip.MustParseAddr(w.src) && l.Dst == netip.MustParseAddr(w.dst) && l.SrcPort == w.sport &&
				l.DstPort == w.dport && l.Protocol == w.proto && l.Action == w.action {
				found = true
				minLen := int64(28) // an IPv4 header and 8 bytes
				if strings.Contains(w.src, ":") {
					minLen = 48
				}
				if l.Status != "OK" || !l.HasPackets || l.Packets != 1 || l.Bytes < minLen || l.Start != l.End ||
					time.Since(time.Unix(l.Start, 0)) > time.Minute {
					t.Errorf("line %+v: want status OK, one packet of at least %d bytes, a recent second", l, minLen)
				}
			}
		}
		if !found {
			b, _ := os.ReadFile(path)
			t.Errorf("no %s line %s:%d -> %s:%d protocol %d in the flow log:\n%s", w.action, w.src, w.sport, w.dst, w.dport, w.proto, b)
		}
	}
	// Nothing but these flows (and the denied SYNs' retries) reached fwd.
	for _, l := range lines {
		if l.Status != "OK" || (l.DstPort != 80 && l.DstPort != 8080 && l.DstPort != 9001 && l.Protocol != 1) {
			t.Errorf("unexpected line %+v", l)
		}
	}
	// The drop log on stderr stays, in words.
	for _, port := range []string{"port=8080", "port=9001"} {
		if !strings.Contains(f.log(), "reason=no-match") || !strings.Contains(f.log(), port) {
			t.Errorf("the drop to %s was not logged on stderr:\n%s", port, f.log())
		}
	}

	// A flow log fwd cannot open: exit 1 at start, nothing installed.
	before := iptablesSave(t, e.server)
	g := e.launchFwd("--socket", e.socket(), "--rules", rules, "--flow-log", filepath.Join(e.dir, "missing", "flows.log"))
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		t.Fatal("fwd with an unopenable flow log did not exit")
	}
	if code := g.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(g.log(), "flow log") {
		t.Errorf("unopenable flow log: exit %d, want 1 naming the flow log:\n%s", code, g.log())
	}
	if after := iptablesSave(t, e.server); after != before {
		t.Errorf("fwd installed rules although it could not open its flow log:\n%s", after)
	}
}
