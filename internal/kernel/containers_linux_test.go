package kernel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// dockerFilter is the filter table Docker 20.10 writes at start (read with
// iptables-save from dockerd run in a namespace, one published port).
const dockerFilter = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 198.19.12.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 198.19.12.0/24 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.19.12.2:80
COMMIT
`

// dockerRestart is what dockerd 20.10 does to FORWARD and DOCKER-USER when
// it starts again (setupUserChain: keep the chain, add RETURN if missing,
// move the jump to the top; its bridge rules are inserted ahead too).
const dockerRestart = `*filter
-D FORWARD -j DOCKER-USER
-I FORWARD 1 -j DOCKER-USER
COMMIT
`

func testNS(t *testing.T) (string, ExecRunner) {
	t.Helper()
	requireRoot(t)
	b := make([]byte, 4)
	rand.Read(b)
	ns := "fwdk-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	return ns, ExecRunner{Prefix: []string{"ip", "netns", "exec", ns}}
}

// TestRealIptablesContainers: with Docker's chain layout (or none), the
// container hooks install without drift (the kernel prints them as fwd
// writes them), survive dockerd's restart through DOCKER-USER while Check
// names the FORWARD jump Docker put behind its own, and Remove leaves the
// tables exactly as before, deleting a DOCKER-USER only fwd created (also
// when a fwd killed before its Remove created it).
func TestRealIptablesContainers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		docker bool
		kill9  bool // a new Installer (fwd restarted after kill -9) removes
	}{{"docker running", true, false}, {"no docker", false, false}, {"no docker, restart after kill -9", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := testNS(t)
			ctx := context.Background()
			if tc.docker {
				if err := r.Restore(ctx, IPv4, dockerFilter, NoFlush); err != nil {
					t.Fatal(err)
				}
			}
			before := saveBoth(t, r)
			cfg := Config{QueueBase: 0, QueueCount: 2, Containers: true, ContainerEgress: true}
			in := New(r, nil)
			if err := in.Install(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			if drift, err := New(r, nil).Check(ctx, cfg); err != nil || len(drift) > 0 {
				t.Fatalf("right after Install: drift %q, err %v", drift, err)
			}
			after := saveBoth(t, r)
			for _, want := range []string{"-A PREROUTING -j FWD-PREROUTING", "-A DOCKER-USER -j FWD-FORWARD", "-A FORWARD -j FWD-FORWARD", "-A FORWARD -j FWD-SAVE", "--dst-type LOCAL -j NFQUEUE"} {
				if !strings.Contains(after, want) {
					t.Errorf("installed tables lack %q:\n%s", want, after)
				}
			}
			if tc.docker {
				if err := r.Restore(ctx, IPv4, dockerRestart, NoFlush); err != nil {
					t.Fatal(err)
				}
				drift, err := in.Check(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				want := "ipv4 filter: jump FORWARD -> FWD-FORWARD is not the first rule of FORWARD (-A FORWARD -j DOCKER-USER is)"
				if !slices.Equal(drift, []string{want}) {
					t.Errorf("after dockerd's restart: drift %q, want only %q", drift, want)
				}
				if err := in.Reinstall(ctx, cfg); err != nil {
					t.Fatal(err)
				}
				if drift, err := in.Check(ctx, cfg); err != nil || len(drift) > 0 {
					t.Fatalf("after the repair: drift %q, err %v", drift, err)
				}
			}
			if tc.kill9 {
				in = New(r, nil)
				if err := in.Install(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			if err := in.Remove(ctx); err != nil {
				t.Fatal(err)
			}
			if got := saveBoth(t, r); got != before {
				t.Errorf("after Remove the tables differ from before Install:\nbefore:\n%s\nafter:\n%s", before, got)
			}
		})
	}
}
