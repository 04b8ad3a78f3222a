package kernel

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestCheck installs, lets someone else change the tables, and wants Check
// to name each change, Install to repair it, and Check to find nothing
// after.
func TestCheck(t *testing.T) {
	base := Config{QueueBase: 0, QueueCount: 1}
	egress := Config{QueueBase: 0, QueueCount: 1, Egress: true}
	tests := []struct {
		name    string
		cfg     Config
		change  func(t *testing.T, r *fakeRunner)
		want    []string // each must be one of the drift lines
		wantLen int      // number of drift lines; 0 with want empty
	}{
		{name: "nothing changed", cfg: base, change: func(*testing.T, *fakeRunner) {}},
		{
			name: "someone else's rules elsewhere",
			cfg:  base,
			change: restore(IPv4, "*filter\n:host-in - [0:0]\n-A INPUT -p tcp --dport 9999 -j host-in\n-A host-in -j ACCEPT\nCOMMIT\n"+
				"*mangle\n-A PREROUTING -p udp --dport 9999 -j ACCEPT\nCOMMIT\n"),
		},
		{
			name:   "chain flushed",
			cfg:    base,
			change: restore(IPv4, "*filter\n:FWD-INPUT - [0:0]\nCOMMIT\n"),
			want: []string{
				"ipv4 filter: rule missing: -A FWD-INPUT -i lo -j ACCEPT",
				"ipv4 filter: rule missing: -A FWD-INPUT -j NFQUEUE --queue-num 0",
			},
			wantLen: 5,
		},
		{
			name:    "input jump deleted",
			cfg:     base,
			change:  restore(IPv4, "*filter\n-D INPUT -j FWD-INPUT\nCOMMIT\n"),
			want:    []string{"ipv4 filter: jump INPUT -> FWD-INPUT missing"},
			wantLen: 1,
		},
		{
			name:    "ipv6 save jump deleted",
			cfg:     base,
			change:  restore(IPv6, "*security\n-D INPUT -j FWD-SAVE\nCOMMIT\n"),
			want:    []string{"ipv6 security: jump INPUT -> FWD-SAVE missing"},
			wantLen: 1,
		},
		{
			name:   "queue number changed",
			cfg:    base,
			change: restore(IPv4, "*filter\n-D FWD-INPUT -j NFQUEUE --queue-num 0\n-A FWD-INPUT -j NFQUEUE --queue-num 7\nCOMMIT\n"),
			want: []string{
				"ipv4 filter: rule missing: -A FWD-INPUT -j NFQUEUE --queue-num 0",
				"ipv4 filter: unexpected rule: -A FWD-INPUT -j NFQUEUE --queue-num 7",
			},
			wantLen: 2,
		},
		{
			name:    "foreign rule in our chain",
			cfg:     base,
			change:  restore(IPv4, "*filter\n-I FWD-INPUT 1 -p tcp --dport 8080 -j ACCEPT\nCOMMIT\n"),
			want:    []string{"ipv4 filter: unexpected rule: -A FWD-INPUT -p tcp --dport 8080 -j ACCEPT"},
			wantLen: 1,
		},
		{
			name:    "rule put before our jump",
			cfg:     base,
			change:  restore(IPv6, "*filter\n-I INPUT 1 -p tcp -j ACCEPT\nCOMMIT\n"),
			want:    []string{"ipv6 filter: jump INPUT -> FWD-INPUT is not the first rule of INPUT (-A INPUT -p tcp -j ACCEPT is)"},
			wantLen: 1,
		},
		{
			name:    "jump duplicated",
			cfg:     base,
			change:  restore(IPv4, "*filter\n-A INPUT -j FWD-INPUT\nCOMMIT\n"),
			want:    []string{"ipv4 filter: jump INPUT -> FWD-INPUT present 2 times"},
			wantLen: 1,
		},
		{
			name:   "egress chain and jump removed",
			cfg:    egress,
			change: restore(IPv4, "*filter\n-D OUTPUT -j FWD-OUTPUT\n:FWD-OUTPUT - [0:0]\n-X FWD-OUTPUT\nCOMMIT\n"),
			want: []string{
				"ipv4 filter: chain FWD-OUTPUT missing",
				"ipv4 filter: jump OUTPUT -> FWD-OUTPUT missing",
			},
			wantLen: 2,
		},
		{
			name:    "a chain of ours we did not install",
			cfg:     base,
			change:  restore(IPv4, "*filter\n:FWD-EXTRA - [0:0]\n-A FORWARD -j FWD-EXTRA\nCOMMIT\n"),
			want:    []string{"ipv4 filter: unexpected chain FWD-EXTRA", "ipv4 filter: unexpected jump -A FORWARD -j FWD-EXTRA"},
			wantLen: 2,
		},
		{
			// Issue 16: a second fwd with another --queue-num took the
			// chains over.
			name: "another installer took over with other queues",
			cfg:  base,
			change: func(t *testing.T, r *fakeRunner) {
				if err := New(r, nil).Install(context.Background(), Config{QueueBase: 5, QueueCount: 2}); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{
				"ipv4 filter: rule missing: -A FWD-INPUT -j NFQUEUE --queue-num 0",
				"ipv4 filter: unexpected rule: -A FWD-INPUT -j NFQUEUE --queue-balance 5:6",
				"ipv6 filter: rule missing: -A FWD-INPUT -j NFQUEUE --queue-num 0",
			},
			wantLen: 4,
		},
		{
			// ... and its clean stop removed everything.
			name: "another installer removed everything",
			cfg:  base,
			change: func(t *testing.T, r *fakeRunner) {
				if err := New(r, nil).Remove(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{
				"ipv4 filter: chain FWD-INPUT missing",
				"ipv4 filter: jump INPUT -> FWD-INPUT missing",
				"ipv4 security: chain FWD-SAVE missing",
				"ipv6 security: jump INPUT -> FWD-SAVE missing",
			},
			wantLen: 8,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			r := newFake()
			in := New(r, nil)
			if err := in.Install(ctx, tt.cfg); err != nil {
				t.Fatal(err)
			}
			tt.change(t, r)
			drift, err := in.Check(ctx, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !slices.Contains(drift, w) {
					t.Errorf("drift lacks %q:\n%s", w, strings.Join(drift, "\n"))
				}
			}
			if len(drift) != tt.wantLen {
				t.Errorf("%d drift lines, want %d:\n%s", len(drift), tt.wantLen, strings.Join(drift, "\n"))
			}
			if err := in.Install(ctx, tt.cfg); err != nil {
				t.Fatal(err)
			}
			if drift, err := in.Check(ctx, tt.cfg); err != nil || len(drift) > 0 {
				t.Errorf("after a repairing Install: drift %q, err %v", drift, err)
			}
		})
	}
}

// restore applies an iptables-restore --noflush script to one family.
func restore(fam Family, script string) func(*testing.T, *fakeRunner) {
	return func(t *testing.T, r *fakeRunner) {
		t.Helper()
		if err := r.Restore(context.Background(), fam, script, NoFlush); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckOtherConfig: Check against a config other than the installed
// one names what that config lacks.
func TestCheckOtherConfig(t *testing.T) {
	ctx := context.Background()
	in := New(newFake(), nil)
	if err := in.Install(ctx, Config{QueueCount: 1}); err != nil {
		t.Fatal(err)
	}
	drift, err := in.Check(ctx, Config{QueueCount: 1, Egress: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"ipv4 filter: chain FWD-OUTPUT missing", "ipv6 security: jump OUTPUT -> FWD-SAVE missing"} {
		if !slices.Contains(drift, w) {
			t.Errorf("drift lacks %q:\n%s", w, strings.Join(drift, "\n"))
		}
	}
	if _, err := in.Check(ctx, Config{}); err == nil {
		t.Error("Check with 0 queues: no error")
	}
}

// rewordingRunner prints one match differently from how it was written,
// as some iptables versions do.
type rewordingRunner struct{ *fakeRunner }

func (r rewordingRunner) Save(ctx context.Context, fam Family) (string, error) {
	s, err := r.fakeRunner.Save(ctx, fam)
	return strings.ReplaceAll(s, "--ctstate RELATED,ESTABLISHED", "--ctstate ESTABLISHED,RELATED"), err
}

// TestCheckComparesWithWhatTheKernelPrints: a rule the kernel prints in
// other words is not drift (or fwd would reinstall forever), while a real
// change still is.
func TestCheckComparesWithWhatTheKernelPrints(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	in := New(rewordingRunner{f}, nil)
	cfg := Config{QueueCount: 2}
	if err := in.Install(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if drift, err := in.Check(ctx, cfg); err != nil || len(drift) > 0 {
		t.Fatalf("right after Install: drift %q, err %v", drift, err)
	}
	restore(IPv4, "*filter\n-D INPUT -j FWD-INPUT\nCOMMIT\n")(t, f)
	drift, err := in.Check(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(drift, []string{"ipv4 filter: jump INPUT -> FWD-INPUT missing"}) {
		t.Errorf("drift %q, want only the missing jump", drift)
	}
	// After Remove there is nothing to compare the wording with: the
	// rules as fwd writes them are the reference.
	if err := in.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if drift, err := in.Check(ctx, cfg); err != nil || len(drift) == 0 {
		t.Errorf("after Remove: drift %q, err %v; want drift", drift, err)
	}
}

// TestReinstallFailureKeepsWhatIsLeft: a repair that fails does not remove
// the rest of fwd's rules, as a failed Install does.
func TestReinstallFailureKeepsWhatIsLeft(t *testing.T) {
	ctx := context.Background()
	r := newFake()
	in := New(r, nil)
	cfg := Config{QueueCount: 1}
	if err := in.Install(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	restore(IPv4, "*filter\n-D INPUT -j FWD-INPUT\nCOMMIT\n")(t, r)
	r.failOn = "-I INPUT 1 -j FWD-INPUT"
	if err := in.Reinstall(ctx, cfg); err == nil {
		t.Fatal("Reinstall succeeded although iptables-restore failed")
	}
	drift, err := in.Check(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(drift, []string{"ipv4 filter: jump INPUT -> FWD-INPUT missing"}) {
		t.Errorf("after a failed repair: drift %q, want only the jump that was already missing", drift)
	}
	r.failOn = ""
	if err := in.Reinstall(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if drift, err := in.Check(ctx, cfg); err != nil || len(drift) > 0 {
		t.Errorf("after the repair: drift %q, err %v", drift, err)
	}
}
