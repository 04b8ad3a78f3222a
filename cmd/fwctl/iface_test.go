package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayIface: the fixture's SYN to 22 is accepted only when the
// capture is replayed as taken on the interface whose group opens 22.
func TestReplayIface(t *testing.T) {
	rulesPath, capPath, _ := replayFixture(t)
	ifRules := filepath.Join(filepath.Dir(rulesPath), "iface.yaml")
	body := replayRules + "  - name: private\n    interfaces: [\"eth1*\"]\n    ingress: [{proto: tcp, ports: 22, from: [any]}]\n    egress: []\n"
	if err := os.WriteFile(ifRules, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args     []string
		accepted uint64
	}{
		{nil, 4},
		{[]string{"--iface", "eth0"}, 4},
		{[]string{"--iface", "eth1"}, 5},
		{[]string{"--iface", "eth12"}, 5},
	}
	for _, tt := range tests {
		args := append([]string{"replay", "-f", ifRules, "--host", "198.18.0.1", "--json", capPath}, tt.args...)
		code, out, errOut := runFwctl(args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d, stderr %s", tt.args, code, errOut)
		}
		if s := decodeSummary(t, out); s.Accepted != tt.accepted {
			t.Errorf("%v: accepted %d, want %d", tt.args, s.Accepted, tt.accepted)
		}
	}
	code, _, errOut := runFwctl("replay", "-f", ifRules, "--iface", "eth*", capPath)
	if code != exitUsage || !strings.Contains(errOut, `bad --iface "eth*"`) {
		t.Errorf("--iface eth*: exit %d, %s; want a usage error", code, errOut)
	}
}

func TestCutOn(t *testing.T) {
	tests := []struct {
		words, rest string
		iface, err  string
	}{
		{"22/tcp", "22/tcp", "", ""},
		{"in on eth1 to any port 5432 proto tcp", "in to any port 5432 proto tcp", "eth1", ""},
		{"out on eth0 53/udp", "out 53/udp", "eth0", ""},
		{"on wg+ 51820/udp", "51820/udp", "wg+", ""},
		{"in on", "", "", `"on" needs an interface`},
		{"in on a/b 22", "", "", `not allowed in an interface name`},
	}
	for _, tt := range tests {
		iface, rest, err := cutOn(strings.Fields(tt.words))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.words, err, tt.err)
			}
			continue
		}
		if err != nil || iface != tt.iface || strings.Join(rest, " ") != tt.rest {
			t.Errorf("%q: %q %q %v, want %q %q", tt.words, iface, rest, err, tt.iface, tt.rest)
		}
	}
}
