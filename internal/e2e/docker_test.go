package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// publishedRules open 8081 only: the container published on 8080 is
// closed, the one on 8081 open.
const publishedRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 8081, from: [any]}
`

// waitPass polls u from the client until it answers (a container that
// has just started, or restarted with dockerd).
func (e *env) waitPass(u string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := e.curl(u, "", time.Second)
		if err == nil && strings.HasPrefix(out, "ok ") {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s does not answer: %v %s", u, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// containerGet sends an HTTP GET to host:port from inside container name
// and returns the answer, headers included (busybox nc: the static
// busybox's wget crashes without an /etc).
func (d *dockerd) containerGet(name, host string, port int) (string, error) {
	return d.docker("exec", name, "/bin/busybox", "sh", "-c",
		fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | /bin/busybox nc -w 3 %s %d`, host, port))
}

// TestDockerPublishedPorts runs dockerd 20.10 in the server namespace
// with two containers published on 8080 and 8081 (both families) and
// rules that open 8081 only: 8080 times out from the client, 8081 and the
// containers' outbound and container-to-container traffic work, and
// traffic routed straight to a container's address is decided by its
// port (80: closed). fwctl allow 8080/tcp opens 8080 live; fwd's stop
// leaves the tables as they were; after dockerd restarts (and rebuilds
// its chains) fwd's hooks are still in place and still decide. With
// --container-egress the containers' outbound connections follow the
// egress rules.
func TestDockerPublishedPorts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.startDockerd()
	d.importImage("fwd-e2e:1")
	ipA := d.runHTTPD("fwd-e2e:1", "closed", 8080)
	ipB := d.runHTTPD("fwd-e2e:1", "open", 8081)
	mustRun(t, "ip", "-n", e.client, "route", "add", dockerCIDR, "via", server4)
	mustRun(t, "ip", "-n", e.client, "-6", "route", "add", dockerV6, "via", server6)
	ipA6 := d.mustDocker("inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}}", "closed")
	outside := listenIn(t, e.client, "tcp", client4+":9000")
	go http.Serve(outside, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok client") }))
	// Without fwd everything answers, or a drop later means nothing.
	for _, u := range []string{url("http", server4, 8080), url("http", server4, 8081), url("http", server6, 8080), url("http", ipA, 80), url("http", ipA6, 80)} {
		e.waitPass(u)
	}
	before := iptablesSave(t, e.server)

	path := e.writeRules("rules.yaml", publishedRules)
	f := e.startFwd("--rules", path, "--queues", "2")
	e.checkPublished(d, ipA, ipB)
	e.mustDrop(url("http", ipA6, 80), "") // routed to the container over IPv6
	e.checkStatus(map[string]string{
		"8080/tcp (v4)": ipA + ":80 DOCKER closed: no rule admits it",
		"8080/tcp (v6)": "DOCKER closed: no rule admits it",
		"8081/tcp (v4)": ipB + ":80 DOCKER open: Anywhere",
		"8081/tcp (v6)": "DOCKER open: Anywhere",
	})

	e.mustFwctl("allow", "8080/tcp")
	parallel(
		func() { e.mustPass(url("http", server4, 8080), "") },
		func() { e.mustPass(url("http", server6, 8080), "") },
	)
	e.checkStatus(map[string]string{"8080/tcp (v4)": "open: Anywhere", "8080/tcp (v6)": "open: Anywhere"})
	f.stop()
	if after := iptablesSave(t, e.server); after != before {
		t.Errorf("tables after fwd's stop:\n%s\nbefore its start:\n%s", after, before)
	}

	writeAtomic(t, path, publishedRules) // 8080 closed again
	f = e.startFwd("--rules", path, "--queues", "2", "--reconcile-interval", "200ms")
	from := f.mark()
	d.restart()
	e.waitPass(url("http", server4, 8081))
	ipA = d.mustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "closed")
	ipB = d.mustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "open")
	during := iptablesSave(t, e.server)
	for _, want := range []string{"-A PREROUTING -j FWD-PREROUTING", "-A DOCKER-USER -j FWD-FORWARD", "-A FORWARD -j FWD-FORWARD"} {
		if !strings.Contains(during, want) {
			t.Errorf("after dockerd's restart the tables lack %q:\n%s", want, during)
		}
	}
	// dockerd put its FORWARD rules back ahead of fwd's jump; the
	// reconcile loop notices and puts fwd first again.
	f.waitLog(from, "kernel rules changed by someone else")
	e.checkPublished(d, ipA, ipB)
	f.stop()

	// --container-egress: the containers' outbound connections follow
	// the egress rules (9000 to the client only); container to container
	// still passes.
	other := listenIn(t, e.client, "tcp", client4+":9001")
	go http.Serve(other, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok client") }))
	egress := e.writeRules("egress.yaml", publishedRules+"    egress:\n      - {proto: tcp, ports: 9000, to: ["+client4+"]}\n")
	e.startFwd("--rules", egress, "--queues", "2", "--container-egress")
	parallel(
		func() {
			if out, err := d.containerGet("closed", client4, 9000); err != nil || !strings.Contains(out, "ok client") {
				e.t.Errorf("container to the client's 9000: %v %q, want it to pass (the egress rules allow it)", err, out)
			}
		},
		func() {
			if out, err := d.containerGet("closed", client4, 9001); err == nil || strings.Contains(out, "ok client") {
				e.t.Errorf("container to the client's 9001: %v %q, want it dropped (no egress rule)", err, out)
			}
		},
		func() {
			if out, err := d.containerGet("closed", ipB, 80); err != nil || !strings.Contains(out, containerBody) {
				e.t.Errorf("container to container with --container-egress: %v %q, want it to pass", err, out)
			}
		},
		func() { e.mustPass(url("http", server4, 8081), "") },
	)
}

// checkPublished: 8080 (container closed) is dropped over both families
// and when routed to the container's own port 80; 8081 answers; the
// closed container still reaches the client and the open container.
func (e *env) checkPublished(d *dockerd, ipA, ipB string) {
	e.t.Helper()
	parallel(
		func() { e.mustDrop(url("http", server4, 8080), "") },
		func() { e.mustDrop(url("http", server6, 8080), "") },
		func() { e.mustDrop(url("http", ipA, 80), "") },
		func() { e.mustPass(url("http", server4, 8081), "") },
		func() { e.mustPass(url("http", server6, 8081), "") },
		func() {
			if out, err := d.containerGet("closed", client4, 9000); err != nil || !strings.Contains(out, "ok client") {
				e.t.Errorf("container to the client: %v %q, want it to pass (outbound is not filtered)", err, out)
			}
		},
		func() {
			if out, err := d.containerGet("closed", ipB, 80); err != nil || !strings.Contains(out, containerBody) {
				e.t.Errorf("container to container: %v %q, want it to pass", err, out)
			}
		},
	)
}

// checkStatus: fwctl status lists each published port (the key) on a
// line whose words, after it, end with want's.
func (e *env) checkStatus(want map[string]string) {
	e.t.Helper()
	out := e.mustFwctl("status").stdout
	if !strings.Contains(out, "Note: containers run with --network host") {
		e.t.Errorf("fwctl status lacks the --network host note:\n%s", out)
	}
	for port, w := range want {
		found := false
		for l := range strings.SplitSeq(out, "\n") {
			if rest, ok := strings.CutPrefix(l, port); ok && strings.HasSuffix(strings.Join(strings.Fields(rest), " "), w) {
				found = true
			}
		}
		if !found {
			e.t.Errorf("fwctl status has no line %q ... %q:\n%s", port, w, out)
		}
	}
}
