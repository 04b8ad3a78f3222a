package main

import (
	"strings"
	"testing"
)

// TestCheckAgreesWithHost: check answers what the host does, and why:
// loopback and neighbour discovery pass before any rule, an icmp query
// without a code asks about every code, icmp names are allow's, protocol
// all asks about every protocol.
func TestCheckAgreesWithHost(t *testing.T) {
	all := writeFile(t, "all.yaml", `version: 1
groups:
  - name: g
    ingress:
      - {proto: tcp, ports: 22, from: [any]}
      - {proto: all, from: [198.18.0.0/16]}
    egress:
      - {proto: udp, ports: 53, to: [any]}
`)
	tests := []struct {
		args []string
		want string // whole stdout; exit 0
	}{
		{[]string{"-f", defaultRules, "tcp", "127.0.0.1", "9999"},
			"accept: tcp port 9999 from 127.0.0.1 to this host (ingress)\n  accepted by the host before fwd sees it: loopback traffic is never filtered (-i lo)\n"},
		{[]string{"-f", defaultRules, "out", "udp", "::1", "53"},
			"accept: udp port 53 from this host to ::1 (egress)\n  accepted by the host before fwd sees it: loopback traffic is never filtered (-o lo)\n"},
		{[]string{"-f", defaultRules, "icmpv6", "2001:db8::1", "135"},
			"accept: icmpv6 type 135, any code, from 2001:db8::1 to this host (ingress)\n  accepted by the host before fwd sees it: IPv6 neighbour discovery and multicast listener discovery are never filtered\n"},
		{[]string{"-f", defaultRules, "icmpv6", "fe80::1", "neighbor-advertisement"},
			"accept: icmpv6 type 136, any code, from fe80::1 to this host (ingress)\n  accepted by the host before fwd sees it: IPv6 neighbour discovery and multicast listener discovery are never filtered\n"},
		{[]string{"-f", defaultRules, "icmpv6", "2001:db8::1", "138"},
			"drop: icmpv6 type 138, any code, from 2001:db8::1 to this host (ingress)\n  dropped: no ingress rule allows it\n"},
		{[]string{"-f", defaultRules, "icmp", "198.51.100.7", "3"},
			"accept: icmp type 3, any code, from 198.51.100.7 to this host (ingress)\n  accepted by group default, ingress rule sgr-5f546d8dc195 (icmp type 3 code 4 from any): IPv4 path MTU discovery (fragmentation needed); of type 3 only code 4 passes\n"},
		{[]string{"-f", defaultRules, "icmp", "198.51.100.7", "3/0"},
			"drop: icmp type 3 code 0 from 198.51.100.7 to this host (ingress)\n  dropped: no ingress rule allows it\n"},
		{[]string{"-f", defaultRules, "icmp", "198.51.100.7", "echo-request"},
			"accept: icmp type 8, any code, from 198.51.100.7 to this host (ingress)\n  accepted by group default, ingress rule sgr-25cd90ce0446 (icmp type 8 from any): ping (echo request)\n"},
		{[]string{"-f", defaultRules, "icmp", "198.51.100.7", "fragmentation-needed"},
			"accept: icmp type 3 code 4 from 198.51.100.7 to this host (ingress)\n  accepted by group default, ingress rule sgr-5f546d8dc195 (icmp type 3 code 4 from any): IPv4 path MTU discovery (fragmentation needed)\n"},
		{[]string{"-f", all, "all", "198.18.3.4"},
			"accept: every protocol from 198.18.3.4 to this host (ingress)\n  accepted by group g, ingress rule sgr-4cb4f8b19a4f (all from 198.18.0.0/16)\n"},
		{[]string{"-f", all, "all", "198.19.0.1"},
			"drop: every protocol from 198.19.0.1 to this host (ingress)\n  dropped: not every protocol passes (no ingress rule of protocol all covers the peer)\n"},
		{[]string{"-f", all, "out", "all", "198.18.3.4"},
			"drop: every protocol from this host to 198.18.3.4 (egress)\n  dropped: not every protocol passes (no egress rule of protocol all covers the peer)\n"},
		{[]string{"-f", defaultRules, "out", "all", "2001:db8::1"},
			"accept: every protocol from this host to 2001:db8::1 (egress)\n  accepted by group default, its default egress rule (egress omitted: all outbound allowed)\n"},
		{[]string{"-f", all, "all", "127.0.0.1"},
			"accept: every protocol from 127.0.0.1 to this host (ingress)\n  accepted by the host before fwd sees it: loopback traffic is never filtered (-i lo)\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			code, out, errs := fwctl(t, "", append([]string{"check"}, tt.args...)...)
			if code != exitOK || out != tt.want {
				t.Errorf("exit %d, output:\n%s\nwant exit 0, output:\n%s\n(stderr %q)", code, out, tt.want, errs)
			}
		})
	}
}

// TestCheckBatchReasons pins the bytes of --batch answers with a reason:
// existing fields first and unchanged, reason (and codes) after.
func TestCheckBatchReasons(t *testing.T) {
	in := strings.Join([]string{
		`{"dir":"in","proto":"tcp","src":"127.0.0.1","dport":9999}`,
		`{"dir":"in","proto":"icmpv6","src":"2001:db8::1","type":135}`,
		`{"dir":"out","proto":"icmpv6","dst":"ff02::16","type":143,"code":0}`,
		`{"dir":"in","proto":"icmp","src":"198.51.100.7","type":3}`,
		`{"dir":"in","proto":"icmp","src":"198.51.100.7","type":8}`,
		`{"dir":"in","proto":"icmp","src":"198.51.100.7","type":3,"code":0}`,
		`{"dir":"in","proto":"all","src":"198.51.100.7"}`,
		`{"dir":"out","proto":"all","dst":"198.51.100.7"}`,
	}, "\n") + "\n"
	want := strings.Join([]string{
		`{"verdict":"accept","reason":"loopback"}`,
		`{"verdict":"accept","reason":"neighbour-discovery"}`,
		`{"verdict":"accept","reason":"neighbour-discovery"}`,
		`{"verdict":"accept","group":"default","rule":2,"reason":"rule","codes":"4","id":"sgr-5f546d8dc195"}`,
		`{"verdict":"accept","group":"default","rule":4,"reason":"rule","codes":"0-255","id":"sgr-25cd90ce0446"}`,
		`{"verdict":"drop","reason":"no-match"}`,
		`{"verdict":"drop","reason":"no-match"}`,
		`{"verdict":"accept","group":"default","rule":null,"reason":"default-egress"}`,
	}, "\n") + "\n"
	code, out, errs := fwctl(t, in, "check", "-f", defaultRules, "--batch")
	if code != exitOK || out != want {
		t.Errorf("exit %d, stderr %q, output:\n%s\nwant:\n%s", code, errs, out, want)
	}
}

// TestCheckExitStatus: --exit-status exits like grep -q: 0 on accept, 1
// on drop; with --batch 0 only when every line is accepted. Without it a
// drop exits 0.
func TestCheckExitStatus(t *testing.T) {
	accept := `{"dir":"in","proto":"tcp","src":"198.51.100.7","dport":443}` + "\n"
	drop := `{"dir":"in","proto":"tcp","src":"198.51.100.7","dport":8080}` + "\n"
	bad := `{"dir":"in","proto":"tcp","src":"1.2.3","dport":1}` + "\n"
	tests := []struct {
		stdin string
		args  []string
		want  int
	}{
		{"", []string{"tcp", "198.51.100.7", "443"}, exitOK},
		{"", []string{"tcp", "198.51.100.7", "8080"}, exitOK},
		{"", []string{"--exit-status", "tcp", "198.51.100.7", "443"}, exitOK},
		{"", []string{"--exit-status", "tcp", "198.51.100.7", "8080"}, exitDropped},
		{"", []string{"--exit-status", "tcp", "127.0.0.1", "8080"}, exitOK},
		{"", []string{"--exit-status", "-o", "json", "tcp", "198.51.100.7", "8080"}, exitDropped},
		{accept + accept, []string{"--exit-status", "--batch"}, exitOK},
		{accept + drop, []string{"--exit-status", "--batch"}, exitDropped},
		{accept + bad, []string{"--exit-status", "--batch"}, exitDropped},
		{accept + drop, []string{"--batch"}, exitOK},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " ")+" "+strings.TrimSpace(tt.stdin), func(t *testing.T) {
			args := append([]string{"check", "-f", defaultRules}, tt.args...)
			if code, _, errs := fwctl(t, tt.stdin, args...); code != tt.want {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.want, errs)
			}
		})
	}
}
