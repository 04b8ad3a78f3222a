package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestPodmanPublishedPorts: the same as TestDockerPublishedPorts' first
// half with podman 4.3 (CNI: CNI-HOSTPORT-DNAT in nat PREROUTING,
// CNI-FORWARD in filter FORWARD, bridge cni-podman0), which has no
// DOCKER-USER of its own: a closed published port times out, an open one
// answers, routed traffic to a container is decided by its port, its
// outbound traffic passes, fwctl status lists the CNI DNAT rules and warns
// about an accept another firewall put ahead of fwd's jump, fwctl
// allow opens the port live and fwd's stop leaves the tables as they were;
// a fwd started with --containers=false says in status that it does not
// decide them.
func TestPodmanPublishedPorts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.startPodman()
	ipA := p.runHTTPD("closed", 8080)
	p.runHTTPD("open", 8081)
	mustRun(t, "ip", "-n", e.client, "route", "add", podmanCIDR, "via", server4)
	mustRun(t, "ip", "netns", "exec", e.server, "sysctl", "-q", "net.ipv4.ip_forward=1")
	outside := listenIn(t, e.client, "tcp", client4+":9000")
	go http.Serve(outside, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok client") }))
	for _, u := range []string{url("http", server4, 8080), url("http", server4, 8081), url("http", ipA, 80)} {
		e.waitPass(u)
	}
	before := iptablesSave(t, e.server)

	path := e.writeRules("rules.yaml", publishedRules)
	// No reconcile: the rule put ahead of fwd's jump below stays there.
	f := e.startFwd("--rules", path, "--queues", "2", "--reconcile-interval", "0")
	parallel(
		func() { e.mustDrop(url("http", server4, 8080), "") },
		func() { e.mustDrop(url("http", ipA, 80), "") },
		func() { e.mustPass(url("http", server4, 8081), "") },
		func() {
			if out, err := p.get("closed", client4, 9000); err != nil || !strings.Contains(out, "ok client") {
				t.Errorf("container to the client: %v %q, want it to pass (outbound is not filtered)", err, out)
			}
		},
	)
	e.checkStatus(map[string]string{
		"8080/tcp (v4)": "closed: no rule admits it",
		"8081/tcp (v4)": "open: Anywhere",
	})
	if out := e.mustFwctl("status").stdout; !strings.Contains(out, ipA+":80") || !strings.Contains(out, "CNI-DN-") {
		t.Errorf("fwctl status does not name the container %s:80 behind CNI's DNAT:\n%s", ipA, out)
	}
	// Another firewall's accept ahead of fwd's jump: the closed port
	// answers, and status says why.
	mustRun(t, "ip", "netns", "exec", e.server, "iptables", "-t", "mangle", "-I", "PREROUTING", "1", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT")
	e.mustPass(url("http", server4, 8080), "")
	want := "Warning: not as installed, traffic may pass without fwd: ipv4 mangle: jump PREROUTING -> FWD-PREROUTING is not the first rule of PREROUTING"
	if out := e.mustFwctl("status").stdout; !strings.Contains(out, want) {
		t.Errorf("fwctl status with an accept ahead of fwd's jump lacks %q:\n%s", want, out)
	}
	mustRun(t, "ip", "netns", "exec", e.server, "iptables", "-t", "mangle", "-D", "PREROUTING", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT")
	e.mustFwctl("allow", "8080/tcp")
	e.mustPass(url("http", server4, 8080), "")
	f.stop()
	if after := iptablesSave(t, e.server); after != before {
		t.Errorf("tables after fwd's stop:\n%s\nbefore its start:\n%s", after, before)
	}

	// Without the hooks, status says the published ports are not fwd's.
	e.startFwd("--rules", path, "--queues", "1", "--containers=false")
	if out := e.mustFwctl("status").stdout; !strings.Contains(out, "Warning: fwd runs with --containers=false") {
		t.Errorf("fwctl status under --containers=false does not warn:\n%s", out)
	}
}
