package kernel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root; CI=true forbids skipping")
	}
	t.Skip("needs root (network namespaces, iptables)")
}

// TestRealIptables runs the installer against the system's iptables in a
// namespace of its own: every rule it writes is accepted, a second install
// and an install after a crash leave one copy, and Remove restores the
// tables exactly.
func TestRealIptables(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"iptables-restore", "ip6tables-restore", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make deps): %v", tool, err)
		}
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := "fwdk-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	r := ExecRunner{Prefix: []string{"ip", "netns", "exec", ns}}
	ctx := context.Background()

	for _, pre := range []string{"", userRules} {
		if pre != "" {
			for _, fam := range families {
				if err := r.Restore(ctx, fam, pre, NoFlush); err != nil {
					t.Fatal(err)
				}
			}
		}
		before := saveBoth(t, r)
		cfg := Config{QueueBase: 3, QueueCount: 2, FailOpen: true, Egress: true}
		if err := New(r, nil).Install(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		once := saveBoth(t, r)
		for _, want := range []string{"-A INPUT -j FWD-INPUT", "-A OUTPUT -j FWD-OUTPUT", "--queue-balance 3:4 --queue-bypass", "--save-mark", "--icmpv6-type 135"} {
			if !strings.Contains(once, want) {
				t.Errorf("installed rules lack %q:\n%s", want, once)
			}
		}
		// A restart after kill -9: a new Installer over the leftovers.
		in := New(r, nil)
		if err := in.Install(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if again := saveBoth(t, r); again != once {
			t.Errorf("second install differs:\n%s\nfirst:\n%s", again, once)
		}
		if err := in.Remove(ctx); err != nil {
			t.Fatal(err)
		}
		if after := saveBoth(t, r); after != before {
			t.Errorf("after remove:\n%s\nbefore:\n%s", after, before)
		}
	}
}
