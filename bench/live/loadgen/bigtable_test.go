package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/classbench"
)

func TestMapPrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.1.2.3/32", "198.19.2.3/32"},
		{"10.1.2.0/24", "198.19.2.0/24"},
		{"10.1.2.0/23", "198.19.2.0/23"},
		{"10.1.0.0/16", "198.19.0.0/16"},
		{"10.0.0.0/8", "198.19.0.0/16"},
		{"0.0.0.0/0", "198.19.0.0/16"},
	}
	for _, tt := range tests {
		got, err := mapPrefix(netip.MustParsePrefix(tt.in))
		if err != nil || got.String() != tt.want {
			t.Errorf("mapPrefix(%s) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := mapPrefix(netip.MustParsePrefix("2001:db8::/32")); err == nil {
		t.Error("mapPrefix of an IPv6 prefix: no error")
	}
}

func TestOverlaps(t *testing.T) {
	rule := func(proto, ports, from string) bigRule {
		b, err := newBigRule(classbench.Rule{Proto: proto, Ports: ports, From: netip.MustParsePrefix(from)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		a, b bigRule
		want bool
	}{
		{"nested prefixes, same port", rule("tcp", "80", "198.19.1.0/24"), rule("tcp", "80", "198.19.1.7/32"), true},
		{"disjoint prefixes", rule("tcp", "80", "198.19.1.0/24"), rule("tcp", "80", "198.19.2.0/24"), false},
		{"other protocol", rule("tcp", "80", "198.19.1.0/24"), rule("udp", "80", "198.19.1.0/24"), false},
		{"all protocols", rule("all", "", "198.19.0.0/16"), rule("udp", "53", "198.19.1.0/24"), true},
		{"port ranges apart", rule("tcp", "1-1023", "198.19.1.0/24"), rule("tcp", "1024-2048", "198.19.1.0/24"), false},
		{"port ranges touch", rule("tcp", "1-1024", "198.19.1.0/24"), rule("tcp", "1024-2048", "198.19.1.0/24"), true},
	}
	for _, tt := range tests {
		if got := tt.a.overlaps(tt.b); got != tt.want || tt.b.overlaps(tt.a) != tt.want {
			t.Errorf("%s: overlaps = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestBigTable converts a small filter set and checks what each variant
// holds: the duplicate the mapping makes is removed, the set keeps the
// first of two overlapping rules, the targets are the set's tcp and udp
// rules.
func TestBigTable(t *testing.T) {
	const set = "@10.1.2.0/24\t0.0.0.0/0\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000\n" +
		"@11.9.2.0/24\t0.0.0.0/0\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000\n" + // same once mapped
		"@10.1.2.7/32\t0.0.0.0/0\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000\n" + // inside the first
		"@10.1.3.0/24\t0.0.0.0/0\t0 : 65535\t53 : 53\t0x11/0xFF\t0x0000/0x0000\n" +
		"@10.1.4.0/24\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x01/0xFF\t0x0000/0x0000\n"
	dir := t.TempDir()
	in := filepath.Join(dir, "set")
	if err := os.WriteFile(in, []byte(set), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := bigTable(in, dir); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ipt := read("iptables.rules")
	for _, want := range []string{
		"-A BENCH-INPUT -s 198.19.2.0/24 -p tcp --dport 80 -j ACCEPT\n" +
			"-A BENCH-INPUT -s 198.19.2.7/32 -p tcp --dport 80 -j ACCEPT\n" +
			"-A BENCH-INPUT -s 198.19.3.0/24 -p udp --dport 53 -j ACCEPT\n" +
			"-A BENCH-INPUT -s 198.19.4.0/24 -p 1 -j ACCEPT\n",
	} {
		if !strings.Contains(ipt, want) {
			t.Errorf("iptables.rules:\n%s\nwant:\n%s", ipt, want)
		}
	}
	nft := read("nft.rules")
	if want := "add element ip fwdbench allow { 198.19.2.0/24 . 6 . 80, 198.19.3.0/24 . 17 . 53, 198.19.4.0/24 . 1 . 0-65535 }\n"; !strings.HasSuffix(nft, want) {
		t.Errorf("nft.rules ends:\n%s\nwant:\n%s", nft[strings.LastIndex(nft, "}\n")-200:], want)
	}
	if got, want := read("targets.txt"), "tcp 198.19.2.0/24 80 80\nudp 198.19.3.0/24 53 53\n"; got != want {
		t.Errorf("targets.txt:\n%s\nwant:\n%s", got, want)
	}
	if ts, err := readTargets(filepath.Join(dir, "targets.txt")); err != nil || len(ts) != 2 {
		t.Errorf("readTargets: %v, %v", ts, err)
	}
	if y := read("large.yaml"); strings.Count(y, "- {proto:") != 4 {
		t.Errorf("large.yaml holds %d rules, want 4:\n%s", strings.Count(y, "- {proto:"), y)
	}
}
