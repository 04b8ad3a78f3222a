package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fwctl runs the command line in-process.
func fwctl(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const defaultRules = "../../rules/default.yaml"

func TestValidate(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "version: 1\ngroups:\n  - name: a\n    ingress:\n      - {proto: tcp, ports: 70000, from: [any]}\n      - {proto: icmp, ports: 8, from: [1.2.3]}\n")
	many := writeFile(t, "many.yaml", "version: 1\ngroups:\n  - name: a\n    ingress:\n"+strings.Repeat("      - {proto: tcp, ports: http, from: [any]}\n", 250))
	syntax := writeFile(t, "syntax.yaml", "version: 1\ngroups:\n  - name: a\n    ingress:\n      - {proto: tcp, ports: [80, from: [any]}\n")
	acl := writeFile(t, "acl.yaml", "version: 1\nacl:\n  ingress:\n    - {number: 100, action: deny, proto: all, from: [198.51.100.9]}\n    - {number: 200, action: allow, proto: tcp, ports: 22, from: [198.51.100.0/24]}\n  egress:\n    - {number: 1, action: deny, proto: all, to: [198.51.100.9]}\ngroups:\n  - name: a\n")
	hostBits := writeFile(t, "hb.yaml", "version: 1\ngroups:\n  - name: a\n    ingress:\n      - {proto: tcp, ports: 22, from: [198.51.100.7/24]}\n")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // must contain
		stderr     string // must contain
		noStdout   bool
		stderrNone bool
	}{
		{"good", []string{"validate", defaultRules}, exitOK, "../../rules/default.yaml: ok: version 1, 1 group, 6 rules (6 ingress, 0 egress), all outbound allowed (egress omitted in default), sha256 ", "", false, true},
		{"acl counted", []string{"validate", acl}, exitOK, acl + ": ok: version 1, 3 acl entries (2 ingress, 1 egress), 1 group, 0 rules (0 ingress, 0 egress), all outbound allowed (egress omitted in a), sha256 ", "", false, true},
		{"every error", []string{"validate", bad}, exitRejected, "", "bad.yaml:5:29: port 70000 out of range: expected 0-65535\n" + bad + ":6:23: ports on proto icmp: only tcp and udp rules take ports\n" + bad + ":6:40: bad address \"1.2.3\"", true, false},
		{"error count", []string{"validate", bad}, exitRejected, "", "bad.yaml: 3 errors", true, false},
		{"many errors capped", []string{"validate", many}, exitRejected, "", many + ":105:29: and 150 more errors\n" + many + ": 250 errors\n", true, false},
		{"syntax error place", []string{"validate", syntax}, exitRejected, "", syntax + ":5:45: YAML syntax: found '}' where ']' was expected to close the '[' at 5:29\n", true, false},
		{"host bits warn", []string{"validate", hostBits}, exitOK, "1 rule", "warning: " + hostBits + ":5:40: CIDR 198.51.100.7/24 has host bits set: using 198.51.100.0/24", false, false},
		{"missing file", []string{"validate", "/nonexistent/rules.yaml"}, exitRejected, "", "no such file or directory", true, false},
		{"no file", []string{"validate"}, exitUsage, "", "usage: fwctl validate", true, false},
		{"rule limit", []string{"validate", "--max-rules", "5", defaultRules}, exitRejected, "", "too many rules: this is rule 6, the limit is 5", true, false},
		{"bad flag", []string{"validate", "--nope", defaultRules}, exitUsage, "", "flag provided but not defined: -nope", true, false},
		{"unknown command", []string{"frobnicate"}, exitUsage, "", "fwctl: unknown command \"frobnicate\"", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := fwctl(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			if !strings.Contains(out, tt.stdout) || tt.noStdout && out != "" {
				t.Errorf("stdout %q, want it to contain %q", out, tt.stdout)
			}
			if !strings.Contains(errs, tt.stderr) || tt.stderrNone && errs != "" {
				t.Errorf("stderr %q, want it to contain %q", errs, tt.stderr)
			}
		})
	}
}

func TestCheckHuman(t *testing.T) {
	locked := "../../rules/locked-egress.yaml"
	tests := []struct {
		args []string
		code int
		want string // whole stdout, or stderr when code != 0
	}{
		{[]string{"-f", defaultRules, "tcp", "198.51.100.7", "443"}, exitOK,
			"accept: tcp port 443 from 198.51.100.7 to this host (ingress)\n  accepted by group default, ingress rule sgr-d4229689eef3 (tcp 80,443 from any): http and https (nginx)\n"},
		{[]string{"-f", defaultRules, "tcp", "2001:db8::7", "8080"}, exitOK,
			"drop: tcp port 8080 from 2001:db8::7 to this host (ingress)\n  dropped: no ingress rule allows it\n"},
		{[]string{"-f", defaultRules, "in", "icmp", "198.51.100.7", "3/4"}, exitOK,
			"accept: icmp type 3 code 4 from 198.51.100.7 to this host (ingress)\n  accepted by group default, ingress rule sgr-5f546d8dc195 (icmp type 3 code 4 from any): IPv4 path MTU discovery (fragmentation needed)\n"},
		{[]string{"-f", defaultRules, "out", "tcp", "198.51.100.7", "25"}, exitOK,
			"accept: tcp port 25 from this host to 198.51.100.7 (egress)\n  accepted by group default, its default egress rule (egress omitted: all outbound allowed)\n"},
		{[]string{"-f", locked, "out", "tcp", "198.51.100.7", "25"}, exitOK,
			"drop: tcp port 25 from this host to 198.51.100.7 (egress)\n  dropped: no egress rule allows it\n"},
		{[]string{"-f", locked, "out", "udp", "2001:db8:53::53", "53"}, exitOK,
			"accept: udp port 53 from this host to 2001:db8:53::53 (egress)\n  accepted by group service, egress rule sgr-2e66247a5364 (udp 53 to resolvers)\n"},
		{[]string{"-f", defaultRules, "47", "198.51.100.7"}, exitOK,
			"drop: protocol 47 from 198.51.100.7 to this host (ingress)\n  dropped: no ingress rule allows it\n"},
		{[]string{"-f", defaultRules, "tcp", "1.2.3", "443"}, exitRejected, "fwctl check: bad address \"1.2.3\": expected an IPv4 or IPv6 address\n"},
		{[]string{"-f", defaultRules, "tcp", "198.51.100.7", "http"}, exitRejected, "fwctl check: bad port \"http\": expected 0-65535\n"},
		{[]string{"-f", defaultRules, "tcp", "198.51.100.7", "70000"}, exitRejected, "fwctl check: bad dport 70000: expected 0-65535\n"},
		{[]string{"-f", defaultRules, "tcp", "198.51.100.7"}, exitUsage, "fwctl check: missing dport: tcp needs a destination port\n"},
		{[]string{"-f", defaultRules, "tcpp", "198.51.100.7", "1"}, exitRejected, "fwctl check: bad protocol \"tcpp\": expected tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255\n"},
		{[]string{"-f", defaultRules, "all", "198.51.100.7", "80"}, exitUsage, "fwctl check: unexpected \"80\": protocol all has no ports\n"},
		{[]string{"-f", defaultRules, "tcp", "198.51.100.7", "1", "2"}, exitUsage, "fwctl check: expected [in|out] PROTO ADDR [PORT | TYPE[/CODE]], got \"tcp 198.51.100.7 1 2\"\n"},
		{[]string{"-f", defaultRules, "icmp", "198.51.100.7", "ping"}, exitRejected, "fwctl check: bad icmp type \"ping\": expected 0-255[/CODE] or one of destination-unreachable, echo-reply, echo-request, fragmentation-needed, parameter-problem, redirect, time-exceeded, timestamp-request\n"},
		{[]string{"-f", defaultRules, "47", "198.51.100.7", "80"}, exitUsage, "fwctl check: unexpected \"80\": protocol 47 has no ports\n"},
		{[]string{"-f", defaultRules, "icmp", "198.51.100.7", "8/x"}, exitRejected, "fwctl check: bad icmp code \"x\": expected 0-255\n"},
		{[]string{"-f", defaultRules, "icmp", "2001:db8::1", "8"}, exitRejected, "fwctl check: icmp needs an IPv4 address, not 2001:db8::1: use icmpv6\n"},
		{[]string{"-f", defaultRules, "icmpv6", "198.51.100.7", "128"}, exitRejected, "fwctl check: icmpv6 needs an IPv6 address, not 198.51.100.7: use icmp\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			code, out, errs := fwctl(t, "", append([]string{"check"}, tt.args...)...)
			got := out
			if tt.code != exitOK {
				got = errs
			}
			if code != tt.code || got != tt.want {
				t.Errorf("exit %d, output:\n%s\nwant exit %d, output:\n%s\n(stderr %q)", code, got, tt.code, tt.want, errs)
			}
		})
	}
}

func TestCheckBadRules(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "version: 2\ngroups: [{name: a}]\n")
	code, out, errs := fwctl(t, "", "check", "-f", bad, "tcp", "198.51.100.7", "443")
	if code != exitRejected || out != "" || !strings.HasSuffix(errs, "bad.yaml:1:10: unsupported version 2: expected 1\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// Without -f, check asks the live daemon; none listens on this socket.
	sock := filepath.Join(t.TempDir(), "none.sock")
	if code, _, errs := fwctl(t, "", "check", "--socket", sock, "tcp", "198.51.100.7", "443"); code != exitUnreach || !strings.Contains(errs, "fwd is not reachable") {
		t.Errorf("without -f: exit %d, stderr %q", code, errs)
	}
}

// TestCheckBatch pins the --batch contract of DESIGN.md: one JSON line
// out per line in, in order, errors answered in place.
func TestCheckBatch(t *testing.T) {
	in := strings.Join([]string{
		`{"dir":"in","proto":"tcp","src":"198.51.100.7","dst":"192.0.2.10","sport":40000,"dport":443}`,
		`{"dir":"in","proto":"icmp","src":"198.51.100.7","dst":"192.0.2.10","type":8,"code":0}`,
		`{"dir":"in","proto":"tcp","src":"198.51.100.7","dport":8080}`,
		`{"dir":"out","proto":"udp","src":"192.0.2.10","dst":"198.51.100.53","sport":5353,"dport":53}`,
		`{"dir":"in","proto":6,"src":"2001:db8::1","dport":22}`,
		`{"dir":"in","proto":"tcp","src":"1.2.3","dport":22}`,
		`not json`,
		``,
		`{"dir":"sideways","proto":"tcp","src":"198.51.100.7","dport":22}`,
		`{"dir":"in","proto":"tcp","src":"198.51.100.7"}`,
		`{"dir":"in","proto":"tcp","src":"198.51.100.7","dport":65536}`,
		`{"dir":"in","proto":"tcp","src":"198.51.100.7","dport":22,"extra":1}`,
		`{"dir":"in","proto":"icmpv6","src":"2001:db8::1","type":2,"code":0}`,
		`{"dir":"in","proto":"icmp","src":"2001:db8::1","type":8}`,
		`{"dir":"in","proto":"tcp","src":"198.51.100.7","dport":22}`,
	}, "\n") + "\n"
	want := strings.Join([]string{
		`{"verdict":"accept","group":"default","rule":1,"reason":"rule","id":"sgr-d4229689eef3"}`,
		`{"verdict":"accept","group":"default","rule":4,"reason":"rule","id":"sgr-25cd90ce0446"}`,
		`{"verdict":"drop","reason":"no-match"}`,
		`{"verdict":"accept","group":"default","rule":null,"reason":"default-egress"}`,
		`{"verdict":"accept","group":"default","rule":0,"reason":"rule","id":"sgr-652c80f5f091"}`,
		`{"error":"line 6: bad address \"1.2.3\": expected an IPv4 or IPv6 address"}`,
		`{"error":"line 7: bad JSON: invalid character 'o' in literal null (expecting 'u')"}`,
		`{"error":"line 8: empty line: expected a JSON object"}`,
		`{"error":"line 9: bad dir \"sideways\": expected \"in\" or \"out\""}`,
		`{"error":"line 10: missing dport: tcp needs a destination port"}`,
		`{"error":"line 11: bad dport 65536: expected 0-65535"}`,
		`{"error":"line 12: bad JSON: unknown field \"extra\""}`,
		`{"verdict":"accept","group":"default","rule":3,"reason":"rule","id":"sgr-a2aba27a2c27"}`,
		`{"error":"line 14: icmp needs an IPv4 address, not 2001:db8::1: use icmpv6"}`,
		`{"verdict":"accept","group":"default","rule":0,"reason":"rule","id":"sgr-652c80f5f091"}`,
	}, "\n") + "\n"
	code, out, errs := fwctl(t, in, "check", "-f", defaultRules, "--batch")
	if code != exitOK || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if out != want {
		t.Errorf("batch output:\n%s\nwant:\n%s", out, want)
	}
	// The last line needs no newline.
	code, out, _ = fwctl(t, `{"dir":"in","proto":"tcp","src":"198.51.100.7","dport":80}`, "check", "-f", defaultRules, "--batch")
	if code != exitOK || out != "{\"verdict\":\"accept\",\"group\":\"default\",\"rule\":1,\"reason\":\"rule\",\"id\":\"sgr-d4229689eef3\"}\n" {
		t.Errorf("unterminated line: exit %d, %q", code, out)
	}
	if code, _, _ := fwctl(t, "", "check", "-f", defaultRules, "--batch", "tcp"); code != exitUsage {
		t.Errorf("--batch with arguments: exit %d", code)
	}
}

// TestOptionsAnywhere: check and validate take their options after the
// query or files too, and --help is not an error.
func TestOptionsAnywhere(t *testing.T) {
	code, out, errs := fwctl(t, "", "check", "tcp", "198.51.100.7", "443", "-f", defaultRules, "-o", "json")
	if code != exitOK || !strings.Contains(out, `"verdict": "accept"`) {
		t.Errorf("check with trailing options: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, errs = fwctl(t, "", "validate", defaultRules, "--max-rules", "3")
	if code != exitRejected || !strings.Contains(errs, "the limit is 3") {
		t.Errorf("validate with a trailing option: exit %d, stderr %q", code, errs)
	}
	for _, cmd := range []string{"validate", "check", "replay", "allow", "delete", "status", "reload"} {
		if code, _, errs := fwctl(t, "", cmd, "--help"); code != exitOK {
			t.Errorf("fwctl %s --help: exit %d, stderr %q", cmd, code, errs)
		}
	}
}
