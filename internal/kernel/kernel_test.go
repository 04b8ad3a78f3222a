package kernel

import (
	"context"
	"strings"
	"testing"
)

func TestScript(t *testing.T) {
	tests := []struct {
		name string
		fam  Family
		cur  string // iptables-save before
		cfg  *Config
		want string
	}{
		{
			name: "ipv4 fresh, two queues",
			fam:  IPv4,
			cfg:  &Config{QueueBase: 0, QueueCount: 2},
			want: `*security
:FWD-SAVE - [0:0]
-A FWD-SAVE -m mark --mark 0x20000000/0x20000000 -j CONNMARK --save-mark --nfmask 0x20000000 --ctmask 0x20000000
-I INPUT 1 -j FWD-SAVE
COMMIT
*filter
:FWD-INPUT - [0:0]
-A FWD-INPUT -i lo -j ACCEPT
-A FWD-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FWD-INPUT -m conntrack --ctstate INVALID -j DROP
-A FWD-INPUT -m connmark --mark 0x20000000/0x20000000 -j ACCEPT
-A FWD-INPUT -j NFQUEUE --queue-balance 0:1
-I INPUT 1 -j FWD-INPUT
COMMIT
`,
		},
		{
			name: "ipv6 fail-open, one queue, egress, own mark",
			fam:  IPv6,
			cfg:  &Config{QueueBase: 10, QueueCount: 1, FailOpen: true, Egress: true, Mark: 0x4},
			want: `*security
:FWD-SAVE - [0:0]
-A FWD-SAVE -m mark --mark 0x4/0x4 -j CONNMARK --save-mark --nfmask 0x4 --ctmask 0x4
-I INPUT 1 -j FWD-SAVE
-I OUTPUT 1 -j FWD-SAVE
COMMIT
*filter
:FWD-INPUT - [0:0]
:FWD-OUTPUT - [0:0]
` + ndBlock("FWD-INPUT", "-i") + ndBlock("FWD-OUTPUT", "-o") + `-I INPUT 1 -j FWD-INPUT
-I OUTPUT 1 -j FWD-OUTPUT
COMMIT
`,
		},
		{
			name: "reinstall over a crash with duplicate jumps and a stale chain",
			fam:  IPv4,
			cur: `*filter
:INPUT DROP [5:300]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:FWD-INPUT - [0:0]
:FWD-OUTPUT - [0:0]
:user - [0:0]
-A INPUT -j FWD-INPUT
-A INPUT -j FWD-INPUT
-A INPUT -p tcp --dport 22 -j user
-A OUTPUT -j FWD-OUTPUT
-A FWD-INPUT -j NFQUEUE --queue-num 0
-A user -j ACCEPT
COMMIT
`,
			cfg: &Config{QueueCount: 1},
			want: `*security
:FWD-SAVE - [0:0]
-A FWD-SAVE -m mark --mark 0x20000000/0x20000000 -j CONNMARK --save-mark --nfmask 0x20000000 --ctmask 0x20000000
-I INPUT 1 -j FWD-SAVE
COMMIT
*filter
:FWD-INPUT - [0:0]
:FWD-OUTPUT - [0:0]
-D INPUT -j FWD-INPUT
-D INPUT -j FWD-INPUT
-D OUTPUT -j FWD-OUTPUT
-X FWD-OUTPUT
-A FWD-INPUT -i lo -j ACCEPT
-A FWD-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FWD-INPUT -m conntrack --ctstate INVALID -j DROP
-A FWD-INPUT -m connmark --mark 0x20000000/0x20000000 -j ACCEPT
-A FWD-INPUT -j NFQUEUE --queue-num 0
-I INPUT 1 -j FWD-INPUT
COMMIT
`,
		},
		{
			name: "remove",
			fam:  IPv4,
			cur: `*security
:INPUT ACCEPT [0:0]
:FWD-SAVE - [0:0]
-A INPUT -j FWD-SAVE
-A FWD-SAVE -m mark --mark 0x20000000/0x20000000 -j CONNMARK --save-mark --nfmask 0x20000000 --ctmask 0x20000000
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FWD-INPUT - [0:0]
-A INPUT -m comment --comment "fwd jump" -g FWD-INPUT
-A FWD-INPUT -j ACCEPT
COMMIT
`,
			want: `*security
:FWD-SAVE - [0:0]
-D INPUT -j FWD-SAVE
-X FWD-SAVE
COMMIT
*filter
:FWD-INPUT - [0:0]
-D INPUT -m comment --comment "fwd jump" -g FWD-INPUT
-X FWD-INPUT
COMMIT
`,
		},
		{
			name: "remove with nothing installed",
			fam:  IPv4,
			cur:  "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n",
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Script(tt.fam, ParseSave(tt.cur), tt.cfg)
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func ndBlock(chain, lo string) string {
	var b strings.Builder
	b.WriteString("-A " + chain + " " + lo + " lo -j ACCEPT\n")
	b.WriteString("-A " + chain + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n")
	for _, r := range ndRules() {
		b.WriteString("-A " + chain + " " + r + "\n")
	}
	b.WriteString("-A " + chain + " -m conntrack --ctstate INVALID -j DROP\n")
	b.WriteString("-A " + chain + " -m connmark --mark 0x4/0x4 -j ACCEPT\n")
	b.WriteString("-A " + chain + " -j NFQUEUE --queue-num 10 --queue-bypass\n")
	return b.String()
}

func TestScriptRejectsBadConfig(t *testing.T) {
	in := New(newFake(), nil)
	for _, cfg := range []Config{{QueueCount: 0}, {QueueBase: 65535, QueueCount: 2}} {
		if err := in.Install(context.Background(), cfg); err == nil {
			t.Errorf("Install(%+v) succeeded", cfg)
		}
	}
}

// userRules is a host's firewall that fwd must leave alone.
const userRules = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"

func TestInstallRemove(t *testing.T) {
	ctx := context.Background()
	base := Config{QueueBase: 0, QueueCount: 2}
	egress := Config{QueueBase: 0, QueueCount: 2, Egress: true}
	tests := []struct {
		name    string
		pre     string   // user rules, restored before fwd starts
		steps   []Config // installs in order
		crashes int      // extra jump copies injected before the last install
	}{
		{name: "fresh kernel", steps: []Config{base}},
		{name: "host with a firewall", pre: userRules, steps: []Config{base}},
		{name: "install twice", pre: userRules, steps: []Config{base, base}},
		{name: "egress on then off", steps: []Config{egress, base}},
		{name: "egress off then on", pre: userRules, steps: []Config{base, egress}},
		{name: "after a crash that left duplicates", pre: userRules, steps: []Config{egress, egress}, crashes: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newFake()
			if tt.pre != "" {
				for _, fam := range families {
					if err := r.Restore(ctx, fam, tt.pre, NoFlush); err != nil {
						t.Fatal(err)
					}
				}
			}
			before := saveBoth(t, r)
			var last Config
			for i, cfg := range tt.steps {
				if i == len(tt.steps)-1 && tt.crashes > 0 {
					for range tt.crashes {
						injectJumps(t, r)
					}
				}
				// A new Installer each time, as after a restart.
				if err := New(r, nil).Install(ctx, cfg); err != nil {
					t.Fatalf("install %d: %v", i, err)
				}
				last = cfg
			}
			// Exactly one copy of what a single install on a clean kernel
			// gives.
			want := newFake()
			if tt.pre != "" {
				for _, fam := range families {
					want.Restore(ctx, fam, tt.pre, NoFlush)
				}
			}
			if err := New(want, nil).Install(ctx, last); err != nil {
				t.Fatal(err)
			}
			if got, w := saveBoth(t, r), saveBoth(t, want); got != w {
				t.Errorf("after installs:\n%s\nwant:\n%s", got, w)
			}
			for _, fam := range families {
				s, _ := r.Save(ctx, fam)
				if n := strings.Count(s, "-j "+ChainInput); n != 1 {
					t.Errorf("%s: %d jumps to %s, want 1", fam, n, ChainInput)
				}
			}
			in := New(r, nil)
			in.Install(ctx, last)
			if err := in.Remove(ctx); err != nil {
				t.Fatal(err)
			}
			if after := saveBoth(t, r); after != before {
				t.Errorf("after remove:\n%s\nbefore install:\n%s", after, before)
			}
		})
	}
}

// injectJumps adds one more copy of every jump, as a crash between two
// non-atomic tools could have.
func injectJumps(t *testing.T, r *fakeRunner) {
	t.Helper()
	for _, fam := range families {
		s, _ := r.Save(context.Background(), fam)
		var b strings.Builder
		for name, tb := range ParseSave(s) {
			b.WriteString("*" + name + "\n")
			for _, rule := range tb.Rules {
				if rule.jumpsTo(isOurs) {
					b.WriteString("-A " + rule.Spec + "\n")
				}
			}
			b.WriteString("COMMIT\n")
		}
		if err := r.Restore(context.Background(), fam, b.String(), NoFlush); err != nil {
			t.Fatal(err)
		}
	}
}

func saveBoth(t *testing.T, r Runner) string {
	t.Helper()
	var b strings.Builder
	for _, fam := range families {
		s, err := r.Save(context.Background(), fam)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(fam.String() + ":\n" + Normalize(s))
	}
	return b.String()
}

func TestInstallFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	r := newFake()
	for _, fam := range families {
		r.Restore(ctx, fam, userRules, NoFlush)
	}
	before := saveBoth(t, r)
	r.failOn = "ipv6-icmp" // only the IPv6 install fails
	if err := New(r, nil).Install(ctx, Config{QueueCount: 1}); err == nil {
		t.Fatal("Install succeeded, want the IPv6 failure")
	}
	if after := saveBoth(t, r); after != before {
		t.Errorf("after failed install:\n%s\nwant:\n%s", after, before)
	}
}

func TestParseSave(t *testing.T) {
	in := `# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT DROP [12:720]
:FWD-INPUT - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m comment --comment "a b" -g FWD-INPUT
-A FWD-INPUT -j NFQUEUE --queue-num 0
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
COMMIT
`
	got := ParseSave(in)
	f := got["filter"]
	if f == nil || got["mangle"] == nil || len(got) != 2 {
		t.Fatalf("tables: %v", got)
	}
	wantChains := []Chain{{"INPUT", "DROP"}, {"FWD-INPUT", "-"}}
	if len(f.Chains) != 2 || f.Chains[0] != wantChains[0] || f.Chains[1] != wantChains[1] {
		t.Errorf("chains %v, want %v", f.Chains, wantChains)
	}
	wantRules := []Rule{
		{Chain: "INPUT", Spec: "INPUT -i lo -j ACCEPT", Target: "ACCEPT"},
		{Chain: "INPUT", Spec: `INPUT -m comment --comment "a b" -g FWD-INPUT`, Target: "FWD-INPUT"},
		{Chain: "FWD-INPUT", Spec: "FWD-INPUT -j NFQUEUE --queue-num 0", Target: "NFQUEUE"},
	}
	if len(f.Rules) != len(wantRules) {
		t.Fatalf("rules %v", f.Rules)
	}
	for i := range wantRules {
		if f.Rules[i] != wantRules[i] {
			t.Errorf("rule %d: %+v, want %+v", i, f.Rules[i], wantRules[i])
		}
	}
	if f.emptyWithout(isOurs) {
		t.Error("filter with a user rule and DROP policy reported empty")
	}
	if !got["mangle"].emptyWithout(nil) {
		t.Error("empty mangle reported non-empty")
	}
}

func TestNormalize(t *testing.T) {
	a := "# Generated on Mon\n*filter\n:INPUT ACCEPT [10:200]\n-A INPUT -j ACCEPT\nCOMMIT\n# Completed on Mon\n"
	b := "# Generated on Tue\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n# Completed on Tue\n"
	c := "*filter\n:INPUT DROP [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n"
	if Normalize(a) != Normalize(b) {
		t.Errorf("counters and comments not ignored:\n%s\n%s", Normalize(a), Normalize(b))
	}
	if Normalize(a) == Normalize(c) {
		t.Error("policy change ignored")
	}
}
