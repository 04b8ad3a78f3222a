package rules

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/types/direction"
)

func TestIfaceMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"eth1", "eth1", true},
		{"eth1", "eth10", false},
		{"eth1", "eth", false},
		{"eth*", "eth", true},
		{"eth*", "eth0", true},
		{"eth*", "veth0", false},
		{"eth+", "eth7", true},
		{"eth+", "en0", false},
		{"*", "lo", true},
		{"+", "anything", true},
	}
	for _, tt := range tests {
		if got := IfaceMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("IfaceMatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestDecodeInterfaces(t *testing.T) {
	tests := []struct {
		name, groups string
		want         [][]string // per group; nil: every interface
		err          string     // substring of the error, "" for none
	}{
		{"omitted", `[{name: a, ingress: []}]`, [][]string{nil}, ""},
		{"names", `[{name: a, interfaces: [eth1, wg0]}, {name: b}]`, [][]string{{"eth1", "wg0"}, nil}, ""},
		{"wildcards", `[{name: a, interfaces: ["eth*", veth+, "*"]}]`, [][]string{{"eth*", "veth+", "*"}}, ""},
		{"empty list", `[{name: a, interfaces: []}]`, nil, "2:32: interfaces is empty"},
		{"not a list", `[{name: a, interfaces: eth0}]`, nil, "interfaces: expected a list"},
		{"inner wildcard", `[{name: a, interfaces: ["e*h0"]}]`, nil, `wildcard '*' at byte 2`},
		{"two wildcards", `[{name: a, interfaces: ["eth**"]}]`, nil, "one wildcard at the end only"},
		{"too long", `[{name: a, interfaces: [abcdefghijklmnop]}]`, nil, "16 bytes long"},
		{"slash", `[{name: a, interfaces: [a/b]}]`, nil, `'/' is not allowed`},
		{"duplicate", `[{name: a, interfaces: [eth0, eth0]}]`, nil, `duplicate interface "eth0"`},
		{"empty name", `[{name: a, interfaces: [""]}]`, nil, "interface name is empty"},
		{"map item", `[{name: a, interfaces: [{x: 1}]}]`, nil, "interface: expected an interface name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("t.yaml", []byte("version: 1\ngroups: "+tt.groups+"\n"), Options{})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.want {
				if got := f.Groups[i].Interfaces; !slices.Equal(got, w) || (got == nil) != (w == nil) {
					t.Errorf("group %d interfaces %q, want %q", i, got, w)
				}
			}
			if len(f.Warnings) != 0 {
				t.Errorf("warnings %v: decoding cannot know the host's interfaces", f.Warnings)
			}
		})
	}
}

func TestUnmatchedInterfaces(t *testing.T) {
	f, err := Parse("t.yaml", []byte("version: 1\ngroups:\n  - {name: a, interfaces: [eth1, \"wg*\"]}\n  - {name: b}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := f.UnmatchedInterfaces([]string{"lo", "eth0", "eth1"})
	if len(got) != 1 || !strings.Contains(got[0].Error(), "t.yaml:3:27: group a: interface wg* matches no interface") {
		t.Fatalf("warnings %v, want one for wg* at 3:27", got)
	}
	if got := f.UnmatchedInterfaces([]string{"eth1", "wg0"}); len(got) != 0 {
		t.Errorf("warnings %v, want none", got)
	}
}

func TestAddRulesOn(t *testing.T) {
	const base = "version: 1\ngroups:\n  - name: web # the front door\n    ingress: [{proto: tcp, ports: 80, from: [any]}]\n"
	r := Rule{Proto: Proto{Num: 6}, Ports: []PortRange{{5432, 5432}}, Peers: []string{"any"}}
	out, err := AddRulesOn("t.yaml", []byte(base), "local-eth1", []string{"eth1"}, direction.Ingress, []Rule{r}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("t.yaml", out, Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	g := f.Groups[f.GroupIndex("local-eth1")]
	if !slices.Equal(g.Interfaces, []string{"eth1"}) || len(g.Ingress) != 1 || g.EgressOmitted {
		t.Errorf("new group %+v, want attached to eth1 with one ingress rule and egress: []", g)
	}
	if !strings.Contains(string(out), "# the front door") {
		t.Errorf("comment lost:\n%s", out)
	}
	// A second rule goes to the same group.
	r.Ports[0] = PortRange{9100, 9100}
	if _, err := AddRulesOn("t.yaml", out, "local-eth1", []string{"eth1"}, direction.Ingress, []Rule{r}, Options{}); err != nil {
		t.Errorf("second add: %v", err)
	}
	// A group attached elsewhere, or everywhere, is refused.
	for _, ifaces := range [][]string{{"eth0"}, {"eth1", "eth2"}} {
		if _, err := AddRulesOn("t.yaml", out, "local-eth1", ifaces, direction.Ingress, []Rule{r}, Options{}); !errors.Is(err, ErrNotAttached) {
			t.Errorf("add on %v to a group on eth1: error %v, want ErrNotAttached", ifaces, err)
		}
	}
	if _, err := AddRulesOn("t.yaml", out, "web", []string{"eth1"}, direction.Ingress, []Rule{r}, Options{}); err == nil || !strings.Contains(err.Error(), "attached to every interface") {
		t.Errorf("add on eth1 to a group on every interface: error %v", err)
	}
	if _, err := AddRulesOn("t.yaml", out, "x", []string{"e*0"}, direction.Ingress, []Rule{r}, Options{}); err == nil {
		t.Error("bad pattern accepted")
	}
}
