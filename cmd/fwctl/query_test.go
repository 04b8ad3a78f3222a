package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/control"
)

// TestQuerySameErrors: a bad query gets the same error whatever the form
// it comes in: fwctl check's words (offline and against the daemon), a
// --batch line (offline and live) and POST /v1/check.
func TestQuerySameErrors(t *testing.T) {
	dir, _, sock := startDaemon(t, goldenLocked, daemonOpts{})
	rulesFile := dir + "/rules.yaml"
	c, err := control.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		words string
		q     control.Query
		code  int // of fwctl check's words: rejected for a bad value, usage for one left out
		want  string
	}{
		{"tcp 1.2.3 443", control.Query{Dir: "in", Proto: "tcp", Src: "1.2.3", Dport: ptr(443)}, exitRejected,
			`bad address "1.2.3": expected an IPv4 or IPv6 address`},
		{"tcp ::ffff:198.18.0.7 443", control.Query{Dir: "in", Proto: "tcp", Src: "::ffff:198.18.0.7", Dport: ptr(443)}, exitRejected,
			`bad address "::ffff:198.18.0.7": IPv4-mapped IPv6; write the IPv4 address`},
		{"out udp fe80::1%eth0 53", control.Query{Dir: "out", Proto: "udp", Dst: "fe80::1%eth0", Dport: ptr(53)}, exitRejected,
			`bad address "fe80::1%eth0": zones are not allowed`},
		{"tcp 198.18.0.7 70000", control.Query{Dir: "in", Proto: "tcp", Src: "198.18.0.7", Dport: ptr(70000)}, exitRejected,
			`bad dport 70000: expected 0-65535`},
		{"tcp 198.18.0.7", control.Query{Dir: "in", Proto: "tcp", Src: "198.18.0.7"}, exitUsage,
			`missing dport: tcp needs a destination port`},
		{"tcpp 198.18.0.7 22", control.Query{Dir: "in", Proto: "tcpp", Src: "198.18.0.7", Dport: ptr(22)}, exitRejected,
			`bad protocol "tcpp": expected tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255`},
		{"icmp 2001:db8::1 8", control.Query{Dir: "in", Proto: "icmp", Src: "2001:db8::1", Type: ptr(8)}, exitRejected,
			`icmp needs an IPv4 address, not 2001:db8::1: use icmpv6`},
		{"icmp 198.18.0.7 300", control.Query{Dir: "in", Proto: "icmp", Src: "198.18.0.7", Type: ptr(300)}, exitRejected,
			`bad type 300: expected 0-255`},
		{"icmp 198.18.0.7 8/256", control.Query{Dir: "in", Proto: "icmp", Src: "198.18.0.7", Type: ptr(8), Code: ptr(256)}, exitRejected,
			`bad code 256: expected 0-255`},
		{"icmp 198.18.0.7", control.Query{Dir: "in", Proto: "icmp", Src: "198.18.0.7"}, exitUsage,
			`missing type: icmp needs an icmp type`},
	}
	for _, tt := range tests {
		t.Run(tt.words, func(t *testing.T) {
			words := strings.Fields(tt.words)
			for _, args := range [][]string{
				append([]string{"check", "-f", rulesFile}, words...),
				append([]string{"--socket", sock, "check"}, words...),
			} {
				code, out, errs := fwctl(t, "", args...)
				if code != tt.code || out != "" || errs != "fwctl check: "+tt.want+"\n" {
					t.Errorf("fwctl %s: exit %d, stdout %q, stderr %q; want exit %d, %q", strings.Join(args, " "), code, out, errs, tt.code, tt.want)
				}
			}
			_, err := c.Check(context.Background(), tt.q)
			var e *control.Error
			if !errors.As(err, &e) || e.Code != control.CodeBadRequest || e.Message != tt.want {
				t.Errorf("POST /v1/check: %v; want bad_request %q", err, tt.want)
			}
			line, err := json.Marshal(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			wantLine := `{"error":` + string(mustJSON(t, "line 1: "+tt.want)) + "}\n"
			for _, args := range [][]string{
				{"check", "-f", rulesFile, "--batch"},
				{"--socket", sock, "check", "--batch"},
			} {
				code, out, errs := fwctl(t, string(line)+"\n", args...)
				if code != exitOK || out != wantLine {
					t.Errorf("fwctl %s < %s: exit %d, stdout %q, stderr %q; want %q", strings.Join(args, " "), line, code, out, errs, wantLine)
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBatchLiveContract: check --batch against the daemon writes the same
// bytes as offline, "rule":null for the implicit egress default included.
func TestBatchLiveContract(t *testing.T) {
	rules := goldenBase
	dir, _, sock := startDaemon(t, rules, daemonOpts{})
	in := `{"dir":"in","proto":"tcp","src":"198.18.0.7","dport":443}
{"dir":"in","proto":"tcp","src":"198.18.0.7","dport":8080}
{"dir":"out","proto":"udp","dst":"198.18.0.9","dport":53}
{"dir":"in","proto":"tcp","src":"1.2.3","dport":1}
`
	want := `{"verdict":"accept","group":"web","rule":0,"reason":"rule","id":"sgr-cd50c0891d1f"}
{"verdict":"drop","reason":"no-match"}
{"verdict":"accept","group":"web","rule":null,"reason":"default-egress"}
{"error":"line 4: bad address \"1.2.3\": expected an IPv4 or IPv6 address"}
`
	for _, args := range [][]string{
		{"check", "-f", dir + "/rules.yaml", "--batch"},
		{"--socket", sock, "check", "--batch"},
	} {
		code, out, errs := fwctl(t, in, args...)
		if code != exitOK || out != want {
			t.Errorf("fwctl %s: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", strings.Join(args, " "), code, errs, out, want)
		}
	}
}
