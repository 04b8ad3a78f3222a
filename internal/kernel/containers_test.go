package kernel

import (
	"context"
	"testing"
)

// TestScriptContainers: the container hooks as iptables-restore input,
// with Docker's DOCKER-USER present (declared: no, that would flush it)
// and absent (declared: fwd creates it).
func TestScriptContainers(t *testing.T) {
	const hooks = `*security
:FWD-SAVE - [0:0]
-A FWD-SAVE -m mark --mark 0x20000000/0x20000000 -j CONNMARK --save-mark --nfmask 0x20000000 --ctmask 0x20000000
-I INPUT 1 -j FWD-SAVE
-I FORWARD 1 -j FWD-SAVE
COMMIT
*mangle
:FWD-PREROUTING - [0:0]
-A FWD-PREROUTING -i lo -j RETURN
-A FWD-PREROUTING -m connmark --mark 0x20000000/0x20000000 -j RETURN
-A FWD-PREROUTING -m conntrack --ctstate NEW -m addrtype --dst-type LOCAL -j NFQUEUE --queue-num 0
-I PREROUTING 1 -j FWD-PREROUTING
COMMIT
*filter
:FWD-INPUT - [0:0]
:FWD-FORWARD - [0:0]
`
	const rest = `-A FWD-INPUT -m mark --mark 0x20000000/0x20000000 -j ACCEPT
-A FWD-INPUT -i lo -j ACCEPT
-A FWD-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FWD-INPUT -m conntrack --ctstate INVALID -j DROP
-A FWD-INPUT -m connmark --mark 0x20000000/0x20000000 -j ACCEPT
-A FWD-INPUT -j NFQUEUE --queue-num 0
-A FWD-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A FWD-FORWARD -m mark --mark 0x20000000/0x20000000 -j RETURN
-A FWD-FORWARD -m connmark --mark 0x20000000/0x20000000 -j RETURN
-A FWD-FORWARD -m conntrack --ctstate DNAT -j RETURN
-A FWD-FORWARD -i docker0 ! -o docker0 -m conntrack --ctstate NEW -j MARK --set-xmark 0x10000000/0x10000000
-A FWD-FORWARD -i br-+ ! -o br-+ -m conntrack --ctstate NEW -j MARK --set-xmark 0x10000000/0x10000000
-A FWD-FORWARD -i podman+ ! -o podman+ -m conntrack --ctstate NEW -j MARK --set-xmark 0x10000000/0x10000000
-A FWD-FORWARD -i cni-podman+ ! -o cni-podman+ -m conntrack --ctstate NEW -j MARK --set-xmark 0x10000000/0x10000000
-A FWD-FORWARD -m mark --mark 0x10000000/0x10000000 -j NFQUEUE --queue-num 0
-A FWD-FORWARD -i docker0 -j RETURN
-A FWD-FORWARD -i br-+ -j RETURN
-A FWD-FORWARD -i podman+ -j RETURN
-A FWD-FORWARD -i cni-podman+ -j RETURN
-A FWD-FORWARD -o docker0 -m conntrack --ctstate NEW -j NFQUEUE --queue-num 0
-A FWD-FORWARD -o br-+ -m conntrack --ctstate NEW -j NFQUEUE --queue-num 0
-A FWD-FORWARD -o podman+ -m conntrack --ctstate NEW -j NFQUEUE --queue-num 0
-A FWD-FORWARD -o cni-podman+ -m conntrack --ctstate NEW -j NFQUEUE --queue-num 0
-I INPUT 1 -j FWD-INPUT
-I FORWARD 1 -j FWD-FORWARD
-I DOCKER-USER 1 -j FWD-FORWARD
COMMIT
`
	cfg := &Config{QueueCount: 1, Containers: true, ContainerEgress: true}
	for _, tc := range []struct {
		name, cur, want string
	}{
		{"docker has not started", "", hooks + ":DOCKER-USER - [0:0]\n" + rest},
		{"docker running", "*filter\n:FORWARD DROP [0:0]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT\n", hooks + rest},
	} {
		if got := Script(IPv4, ParseSave(tc.cur), cfg); got != tc.want {
			t.Errorf("%s: got:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
	}
}

// TestInstallRemoveContainers: on the fake, Remove takes back the
// DOCKER-USER fwd created, and leaves Docker's.
func TestInstallRemoveContainers(t *testing.T) {
	ctx := context.Background()
	cfg := Config{QueueCount: 1, Containers: true}
	for _, tc := range []struct {
		name, cur string
	}{
		{"docker has not started", ""},
		{"docker running", "*filter\n:FORWARD DROP [0:0]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT\n"},
	} {
		r := newFake()
		if tc.cur != "" {
			for _, fam := range families {
				if err := r.Restore(ctx, fam, tc.cur, NoFlush); err != nil {
					t.Fatal(err)
				}
			}
		}
		before := saveBoth(t, r)
		in := New(r, nil)
		if err := in.Install(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if drift, err := in.Check(ctx, cfg); err != nil || len(drift) > 0 {
			t.Fatalf("%s: drift %q, err %v", tc.name, drift, err)
		}
		if err := in.Remove(ctx); err != nil {
			t.Fatal(err)
		}
		if after := saveBoth(t, r); after != before {
			t.Errorf("%s: after Remove:\n%s\nbefore Install:\n%s", tc.name, after, before)
		}
	}
}

func TestConfigRejectsOverlappingMarks(t *testing.T) {
	cfg := Config{QueueCount: 1, Containers: true, Mark: DefaultEgressMark | 1}
	if err := cfg.validate(); err == nil {
		t.Error("an accept mark that overlaps the egress mark validates")
	}
}
