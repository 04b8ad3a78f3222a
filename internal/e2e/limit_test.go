package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLimit: a rule with limit {conns: 3, per: 5s} on the SSH port (nginx
// listens there) admits a client's first three connections, drops its
// fourth within the window (the connect times out), admits another
// client's first, shows the first client as limited in status and the
// counters, and admits it again once it has paused for a window. Two
// queues, so that the client's connections are spread over both workers
// (the limit table is shared). fwctl limit writes ufw's limit.
func TestLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startNginx()
	rules := e.writeRules("rules.yaml", `version: 1
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [any], limit: {conns: 3, per: 5s}}
      - {proto: tcp, ports: 80, from: [any]}
`)
	e.startFwd("--rules", rules, "--queues", "2")

	connect := func(src string, timeout time.Duration) error {
		c, err := e.dialFrom("tcp", src, 0, server4, 22, timeout)
		if err == nil {
			c.Close()
		}
		return err
	}
	for i := range 3 {
		if err := connect(client4, 5*time.Second); err != nil {
			t.Fatalf("connection %d of %s: %v, want it admitted", i+1, client4, err)
		}
	}
	if err := connect(client4, time.Second); err == nil {
		t.Fatalf("the fourth connection of %s within 5 s passed, want it dropped", client4)
	}
	if err := connect(client4b, 5*time.Second); err != nil {
		t.Fatalf("the first connection of %s: %v, want it admitted", client4b, err)
	}
	// A rule without a limit is not braked.
	for range 5 {
		if err := func() error {
			c, err := e.dialFrom("tcp", client4, 0, server4, 80, 5*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}(); err != nil {
			t.Fatalf("port 80 from %s: %v, want it admitted", client4, err)
		}
	}
	st := e.status()
	if n := counter(t, st, "dropped_limited"); n == 0 {
		t.Error("dropped_limited is 0")
	}
	if len(st.Limits) != 1 || st.Limits[0].Over != 1 || !slices.Equal(st.Limits[0].Peers, []string{client4}) || st.Limits[0].Limited == 0 {
		t.Errorf("status limits = %+v, want %s over the limit", st.Limits, client4)
	}
	verbose := e.mustFwctl("status", "verbose").stdout
	if !strings.Contains(verbose, "LIMIT IN") || !strings.Contains(verbose, "1 peer over: "+client4) {
		t.Errorf("status verbose:\n%s", verbose)
	}
	// A pause of a whole window (from the last attempt, the dropped SYN's
	// retransmission included) admits the client again.
	time.Sleep(6 * time.Second)
	if err := connect(client4, 5*time.Second); err != nil {
		t.Fatalf("%s after a pause of a window: %v, want it admitted", client4, err)
	}

	// fwctl limit: ufw's grammar and defaults, written to the file.
	e.mustFwctl("limit", "8080/tcp")
	b, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "{proto: tcp, ports: 8080, from: [any], limit: {conns: 6, per: 30s}}") {
		t.Errorf("rules file after fwctl limit:\n%s", b)
	}
}
