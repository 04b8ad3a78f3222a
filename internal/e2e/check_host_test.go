package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/control"
)

// TestCheckAgreesWithKernel: fwctl check, asked through the running fwd's
// socket, says accept(neighbour-discovery) and accept(loopback) for what
// the kernel really passes before fwd's queue, and the host shows it does:
// an IPv6 connection that needs neighbour discovery succeeds with the
// neighbour caches flushed (the neighbour solicitation counted by the ND
// rule), and a loopback connection to a port no rule allows succeeds.
func TestCheckAgreesWithKernel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startFwd("--rules", e.copyDefaultRules())

	ask := func(want string, args ...string) {
		t.Helper()
		r := e.fwctl(append([]string{"check", "-o", "json"}, args...)...)
		var res control.CheckResult
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || res.Verdict+"("+res.Reason+")" != want {
			t.Errorf("%s\nwant %s", r, want)
		}
	}
	ask("accept(neighbour-discovery)", "icmpv6", client6, "135")
	ask("accept(neighbour-discovery)", "icmpv6", client6, "neighbor-advertisement")
	ask("accept(loopback)", "tcp", "127.0.0.1", "9999")
	ask("drop(no-match)", "tcp", client4, "9999")
	if r := e.fwctl("check", "--exit-status", "tcp", client4, "9999"); r.code != 1 {
		t.Errorf("%s\nwant exit 1 for a drop with --exit-status", r)
	}

	// Neighbour discovery: flush both caches, then connect over IPv6 to a
	// port the rules allow. The server must answer the client's neighbour
	// solicitation, which only the kernel's ND rule lets in.
	ln := listenIn(t, e.server, "tcp6", "["+server6+"]:443")
	go echoServe(ln)
	before := ndPackets(t, e.server)
	for _, ns := range []string{e.client, e.server} {
		mustRun(t, "ip", "-n", ns, "-6", "neigh", "flush", "all")
	}
	c, err := dialIn(e.client, "tcp6", client6, "["+server6+"]:443", 10*time.Second)
	if err != nil {
		t.Fatalf("tcp to [%s]:443 after flushing the neighbour caches: %v", server6, err)
	}
	c.Close()
	if after := ndPackets(t, e.server); after <= before {
		t.Errorf("the ND rules of FWD-INPUT counted %d packets before the connection and %d after: no neighbour discovery passed them", before, after)
	}

	// Loopback: a port no rule allows, reached over lo.
	lo := listenIn(t, e.server, "tcp4", "127.0.0.1:9999")
	go echoServe(lo)
	c, err = dialIn(e.server, "tcp4", "", "127.0.0.1:9999", 10*time.Second)
	if err != nil {
		t.Fatalf("tcp to 127.0.0.1:9999 on the server: %v", err)
	}
	c.Close()
}

// ndPackets sums the packet counters of FWD-INPUT's neighbour discovery
// rules (icmpv6 133-137) in namespace ns.
func ndPackets(t *testing.T, ns string) uint64 {
	t.Helper()
	out := mustRun(t, "ip", "netns", "exec", ns, "ip6tables", "-w", "-t", "filter", "-L", "FWD-INPUT", "-v", "-n", "-x")
	var sum uint64
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.Contains(line, "HL match HL == 255") {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			t.Fatalf("ip6tables line %q: %v", line, err)
		}
		sum += n
	}
	return sum
}
