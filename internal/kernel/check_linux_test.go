package kernel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"slices"
	"testing"
)

// TestRealIptablesCheck: on the system's iptables, Check finds nothing
// right after Install, even without the snapshot (the rules are printed as
// fwd writes them), and names a flushed chain and a deleted jump.
func TestRealIptablesCheck(t *testing.T) {
	requireRoot(t)
	b := make([]byte, 4)
	rand.Read(b)
	ns := "fwdk-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	r := ExecRunner{Prefix: []string{"ip", "netns", "exec", ns}}
	ctx := context.Background()
	cfg := Config{QueueBase: 3, QueueCount: 2, FailOpen: true, Egress: true}
	in := New(r, nil)
	if err := in.Install(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []*Installer{in, New(r, nil)} {
		if drift, err := inst.Check(ctx, cfg); err != nil || len(drift) > 0 {
			t.Fatalf("right after Install: drift %q, err %v", drift, err)
		}
	}
	for _, args := range [][]string{{"iptables", "-F", "FWD-INPUT"}, {"ip6tables", "-D", "INPUT", "-j", "FWD-INPUT"}} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	drift, err := in.Check(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"ipv4 filter: rule missing: -A FWD-INPUT -j NFQUEUE --queue-balance 3:4 --queue-bypass", "ipv6 filter: jump INPUT -> FWD-INPUT missing"} {
		if !slices.Contains(drift, w) {
			t.Errorf("drift lacks %q: %q", w, drift)
		}
	}
	if err := in.Install(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if drift, err := in.Check(ctx, cfg); err != nil || len(drift) > 0 {
		t.Errorf("after the repair: drift %q, err %v", drift, err)
	}
	if err := in.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}
