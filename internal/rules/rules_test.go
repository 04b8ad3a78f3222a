package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/types/ipproto"
)

func TestParseGood(t *testing.T) {
	src := `# comment
version: 1
prefix_lists:
  office: [203.0.113.0/24, 2001:db8:100::/48]
groups:
  - name: web
    description: nginx front door
    ingress:
      - proto: tcp
        ports: [80, 443, "8000-8010", 9000:9001]
        from: [any]
        description: http and https
      - {proto: tcp, ports: 22, from: [office, 198.51.100.7, "2001:db8::1"]}
      - {proto: icmp, icmp: {type: 3, code: 4}, from: [any4]}
      - {proto: icmpv6, icmp: {type: 2}, from: [any6]}
      - {proto: -1, from: [198.18.0.0/15]}
      - {proto: 47, from: 198.18.0.1}
      - {proto: "6", ports: 8443, from: [any]}
    egress:
      - {proto: all, to: [any]}
  - name: quiet
    egress: []
  - name: open
`
	f, err := Parse("good.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(f.Groups) != 3 || f.NumRules() != 8 {
		t.Fatalf("got %d groups, %d rules; want 3, 8", len(f.Groups), f.NumRules())
	}
	web := f.Groups[0]
	if web.Name != "web" || web.Description != "nginx front door" || web.EgressOmitted {
		t.Errorf("web = %+v", web)
	}
	if !f.Groups[2].EgressOmitted || f.Groups[1].EgressOmitted {
		t.Errorf("egress omitted: quiet=%v open=%v, want false true", f.Groups[1].EgressOmitted, f.Groups[2].EgressOmitted)
	}
	r0 := web.Ingress[0]
	wantPorts := []PortRange{{80, 80}, {443, 443}, {8000, 8010}, {9000, 9001}}
	if fmt.Sprint(r0.Ports) != fmt.Sprint(wantPorts) {
		t.Errorf("ports = %v, want %v", r0.Ports, wantPorts)
	}
	if got := fmt.Sprint(r0.Prefixes); got != "[0.0.0.0/0 ::/0]" {
		t.Errorf("any = %s", got)
	}
	if r0.Pos != (Pos{9, 9}) {
		t.Errorf("rule 0 at %+v, want 9:9", r0.Pos)
	}
	if got := fmt.Sprint(web.Ingress[1].Prefixes); got != "[203.0.113.0/24 2001:db8:100::/48 198.51.100.7/32 2001:db8::1/128]" {
		t.Errorf("office + hosts = %s", got)
	}
	if got := *web.Ingress[2].ICMP; got != (ICMP{Type: 3, Code: 4}) {
		t.Errorf("icmp = %+v", got)
	}
	if got := *web.Ingress[3].ICMP; got != (ICMP{Type: 2, AnyCode: true}) {
		t.Errorf("icmpv6 = %+v", got)
	}
	if !web.Ingress[4].Proto.All || web.Ingress[5].Proto != (Proto{Num: 47}) || web.Ingress[6].Proto != (Proto{Num: ipproto.TCP}) {
		t.Errorf("protos = %v %v %v", web.Ingress[4].Proto, web.Ingress[5].Proto, web.Ingress[6].Proto)
	}
	if len(f.Hash) != 64 || len(f.Warnings) != 0 {
		t.Errorf("hash %q, warnings %v", f.Hash, f.Warnings)
	}
}

func TestHostBitsWarn(t *testing.T) {
	src := "version: 1\ngroups:\n  - name: a\n    ingress:\n      - {proto: tcp, ports: 22, from: [198.51.100.7/24]}\n"
	f, err := Parse("w.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Groups[0].Ingress[0].Prefixes[0]; got != netip.MustParsePrefix("198.51.100.0/24") {
		t.Errorf("prefix = %v, want canonical 198.51.100.0/24", got)
	}
	if len(f.Warnings) != 1 || f.Warnings[0].Error() != "w.yaml:5:40: CIDR 198.51.100.7/24 has host bits set: using 198.51.100.0/24" {
		t.Errorf("warnings = %v", f.Warnings)
	}
}

// rulesOf wraps ingress rule lines into a file; the first rule line is line 5.
func rulesOf(lines ...string) string {
	return "version: 1\ngroups:\n  - name: a\n    ingress:\n" + strings.Join(lines, "\n") + "\n"
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the first error, whole
	}{
		{"empty file", "", "e.yaml:1:1: empty file: expected a rules file starting with \"version: 1\""},
		{"only comments", "# nothing\n", "e.yaml:1:1: empty file: expected a rules file starting with \"version: 1\""},
		{"not a mapping", "- a\n", "e.yaml:1:1: expected a mapping with keys version, prefix_lists, acl and groups, got a list"},
		{"syntax", "version: 1\ngroups: [\n", "e.yaml:2:9: YAML syntax: '[' is not closed: expected ']' before the end of the file"},
		{"wrong version", "version: 2\ngroups: [{name: a}]\n", "e.yaml:1:10: unsupported version 2: expected 1"},
		{"version string", "version: one\ngroups: [{name: a}]\n", "e.yaml:1:10: version: expected an integer, got \"one\""},
		{"missing version", "groups: [{name: a}]\n", "e.yaml:1:1: missing version: expected \"version: 1\" at the top"},
		{"unknown top key", "version: 1\ngroup: []\n", "e.yaml:1:1: missing groups: expected a list of at least one group"},
		{"unknown top key named", "version: 1\ngroups: [{name: a}]\nrulez: 1\n", "e.yaml:3:1: unknown key \"rulez\" in rules file: expected one of version, prefix_lists, acl, groups, failsafe"},
		{"groups not a list", "version: 1\ngroups: {name: a}\n", "e.yaml:2:9: groups: expected a list, got a mapping"},
		{"no groups", "version: 1\ngroups: []\n", "e.yaml:2:9: groups is empty: expected at least one group"},
		{"group without name", "version: 1\ngroups:\n  - description: x\n", "e.yaml:3:5: group without a name: expected name: NAME"},
		{"duplicate group", "version: 1\ngroups:\n  - name: a\n  - name: a\n", "e.yaml:4:11: duplicate group name \"a\" (first at line 3)"},
		{"repeated key", "version: 1\ngroups:\n  - name: a\n    name: b\n", "e.yaml:4:5: key \"name\" repeated in group"},
		{"egress null", "version: 1\ngroups:\n  - name: a\n    egress:\n", "e.yaml:4:12: egress is null: write \"egress: []\" for no outbound traffic, or leave egress out to allow all outbound"},
		{"unknown rule key", rulesOf("      - {proto: tcp, port: 22, from: [any]}"), "e.yaml:5:22: unknown key \"port\" in ingress rule: expected one of proto, ports, icmp, from, description, limit (did you mean \"ports\"?)"},
		{"to in ingress", rulesOf("      - {proto: tcp, ports: 22, to: [any]}"), "e.yaml:5:9: ingress rule without from: expected from: [CIDR, address, prefix list or any]"},
		{"rule not a mapping", rulesOf("      - tcp 22"), "e.yaml:5:9: ingress rule: expected a mapping such as {proto: tcp, ports: 443, from: [any]}, got \"tcp 22\""},
		{"missing proto", rulesOf("      - {ports: 22, from: [any]}"), "e.yaml:5:9: ingress rule without proto: expected proto: tcp, udp, icmp, icmpv6, all or a number"},
		{"bad proto", rulesOf("      - {proto: tcpp, from: [any]}"), "e.yaml:5:17: bad protocol \"tcpp\": expected tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255"},
		{"proto out of range", rulesOf("      - {proto: 256, from: [any]}"), "e.yaml:5:17: bad protocol \"256\": expected tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255"},
		{"port too big", rulesOf("      - {proto: tcp, ports: 65536, from: [any]}"), "e.yaml:5:29: port 65536 out of range: expected 0-65535"},
		{"port in list too big", rulesOf("      - {proto: tcp, ports: [80, 70000], from: [any]}"), "e.yaml:5:34: port 70000 out of range: expected 0-65535"},
		{"negative port", rulesOf("      - {proto: tcp, ports: -1, from: [any]}"), "e.yaml:5:29: bad port -1: expected a port 0-65535 or a range \"lo-hi\""},
		{"inverted range", rulesOf("      - {proto: tcp, ports: \"2000-1000\", from: [any]}"), "e.yaml:5:29: inverted port range \"2000-1000\": expected the low port first"},
		{"port word", rulesOf("      - {proto: tcp, ports: http, from: [any]}"), "e.yaml:5:29: bad port \"http\": expected a port 0-65535 or a range \"lo-hi\""},
		{"empty ports", rulesOf("      - {proto: tcp, ports: [], from: [any]}"), "e.yaml:5:29: ports is an empty list: leave ports out for all ports"},
		{"ports on icmp", rulesOf("      - {proto: icmp, ports: 8, from: [any]}"), "e.yaml:5:23: ports on proto icmp: only tcp and udp rules take ports"},
		{"ports on all", rulesOf("      - {proto: all, ports: 80, from: [any]}"), "e.yaml:5:22: ports on proto all: only tcp and udp rules take ports"},
		{"ports on numbered", rulesOf("      - {proto: 47, ports: 80, from: [any]}"), "e.yaml:5:21: ports on proto 47: only tcp and udp rules take ports"},
		{"icmp on tcp", rulesOf("      - {proto: tcp, icmp: {type: 8}, from: [any]}"), "e.yaml:5:22: icmp on proto tcp: only icmp and icmpv6 rules take an icmp type"},
		{"icmp code without type", rulesOf("      - {proto: icmp, icmp: {code: 4}, from: [any]}"), "e.yaml:5:29: icmp code without type: expected type: T (code is optional)"},
		{"icmp type too big", rulesOf("      - {proto: icmp, icmp: {type: 300}, from: [any]}"), "e.yaml:5:36: icmp type 300 out of range: expected 0-255"},
		{"bad cidr", rulesOf("      - {proto: tcp, ports: 22, from: [198.51.100.0/33]}"), "e.yaml:5:40: bad mask \"/33\" in \"198.51.100.0/33\": expected /0 to /32 or a netmask such as /255.255.255.0"},
		{"bad cidr address", rulesOf("      - {proto: tcp, ports: 22, from: [1.2.3/24]}"), "e.yaml:5:40: bad CIDR \"1.2.3/24\": expected an address/length such as 198.51.100.0/24 or 2001:db8::/32"},
		{"netmask with holes", rulesOf("      - {proto: tcp, ports: 22, from: [10.0.0.0/255.0.255.255]}"), "e.yaml:5:40: bad mask \"/255.0.255.255\" in \"10.0.0.0/255.0.255.255\": not contiguous, and a security group holds prefixes only (expected a netmask such as 255.255.255.0)"},
		{"port 0", rulesOf("      - {proto: tcp, ports: 0, from: [any]}"), "e.yaml:5:29: bad port \"0\": port 0 is no service (expected 1-65535)"},
		{"range from port 0", rulesOf("      - {proto: udp, ports: [53, \"0-1023\"], from: [any]}"), "e.yaml:5:34: bad port range \"0-1023\": port 0 is no service (start at 1, or leave ports out for all ports)"},
		{"bad address", rulesOf("      - {proto: tcp, ports: 22, from: [1.2.3]}"), "e.yaml:5:40: bad address \"1.2.3\": expected a CIDR, an address, a prefix list name or any"},
		{"undefined prefix list", rulesOf("      - {proto: tcp, ports: 22, from: [ofice]}"), "e.yaml:5:40: undefined prefix list \"ofice\": define it under prefix_lists, or write a CIDR or any"},
		{"empty prefix list", "version: 1\nprefix_lists:\n  office: []\ngroups:\n  - name: a\n    ingress: [{proto: tcp, from: [office]}]\n", "e.yaml:6:35: prefix list \"office\" is empty: a rule from it would match nothing; add a CIDR to the list or remove it from the rule"},
		{"empty from", rulesOf("      - {proto: tcp, ports: 22, from: []}"), "e.yaml:5:39: from is an empty list: expected at least one CIDR, address, prefix list name or any"},
		{"from is a map", rulesOf("      - {proto: tcp, ports: 22, from: {a: b}}"), "e.yaml:5:39: from: expected a list of CIDRs, addresses, prefix list names or any, got a mapping"},
		{"prefix list bad entry", "version: 1\nprefix_lists:\n  office: [203.0.113.0/24, nope]\ngroups: [{name: a}]\n", "e.yaml:3:28: bad address \"nope\": expected a CIDR, an address, a prefix list name or any"},
		{"nested prefix list", "version: 1\nprefix_lists:\n  office: [203.0.113.0/24]\n  staff: [office, 198.51.100.7]\ngroups: [{name: a}]\n", "e.yaml:4:11: prefix list \"staff\" names prefix list \"office\": prefix lists do not nest, expected a CIDR or an address (copy its entries here)"},
		{"nested prefix list defined later", "version: 1\nprefix_lists:\n  staff: [vpn]\n  vpn: [198.51.100.0/24]\ngroups: [{name: a}]\n", "e.yaml:3:11: prefix list \"staff\" names prefix list \"vpn\": prefix lists do not nest, expected a CIDR or an address (copy its entries here)"},
		{"prefix list reserved name", "version: 1\nprefix_lists:\n  any: [203.0.113.0/24]\ngroups: [{name: a}]\n", "e.yaml:3:3: prefix list name \"any\" is reserved: pick another name"},
		{"description type", rulesOf("      - {proto: tcp, ports: 22, from: [any], description: [x]}"), "e.yaml:5:59: rule description: expected a string, got a list"},
		{"two documents", "version: 1\ngroups: [{name: a}]\n---\nversion: 1\n", "e.yaml:3:1: a second YAML document: expected one rules document per file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("e.yaml", []byte(tt.src), Options{})
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", f)
			}
			if f != nil {
				t.Errorf("a bad file returned a File")
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %v is not an ErrorList", err)
			}
			if got := list[0].Error(); got != tt.want {
				t.Errorf("first error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestEveryErrorReported(t *testing.T) {
	src := rulesOf(
		"      - {proto: tcp, ports: 70000, from: [any]}",
		"      - {proto: udp, ports: 53, from: [1.2.3]}",
		"      - {proto: icmp, ports: 8, from: [any]}",
	)
	_, err := Parse("e.yaml", []byte(src), Options{})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	for i, e := range list {
		if e.Pos.Line != 5+i {
			t.Errorf("error %d at line %d, want %d: %v", i, e.Pos.Line, 5+i, e)
		}
	}
}

func TestRuleLimit(t *testing.T) {
	var b strings.Builder
	for i := range 5 {
		fmt.Fprintf(&b, "      - {proto: tcp, ports: %d, from: [any]}\n", 1000+i)
	}
	src := rulesOf(strings.TrimSuffix(b.String(), "\n"))
	if _, err := Parse("l.yaml", []byte(src), Options{MaxRules: 5}); err != nil {
		t.Fatalf("5 rules with a limit of 5: %v", err)
	}
	_, err := Parse("l.yaml", []byte(src), Options{MaxRules: 4})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Error() != "l.yaml:9:9: too many rules: this is rule 5, the limit is 4" {
		t.Fatalf("limit of 4: %v", err)
	}
}

func TestShippedRules(t *testing.T) {
	paths, err := filepath.Glob("../../rules/*.yaml")
	if err != nil || len(paths) < 3 {
		t.Fatalf("shipped rule files: %v %v", paths, err)
	}
	for _, p := range paths {
		f, err := Load(p, Options{})
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if len(f.Warnings) > 0 {
			t.Errorf("%s: warnings %v", p, f.Warnings)
		}
	}
	f, err := Load("../../rules/default.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, r := range f.Groups[0].Ingress {
		ports = append(ports, r.String())
	}
	want := "[tcp 22 from any tcp 80,443 from any icmp type 3 code 4 from any icmpv6 type 2 from any icmp type 8 from any icmpv6 type 128 from any]"
	if fmt.Sprint(ports) != want || !f.Groups[0].EgressOmitted {
		t.Errorf("default.yaml = %v (egress omitted %v)", ports, f.Groups[0].EgressOmitted)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not-exist", err)
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in   string
		want PortRange
		err  bool
	}{
		{"1", PortRange{1, 1}, false},
		{"0", PortRange{}, true},     // port 0 is no service
		{"0-100", PortRange{}, true}, // nor the start of a range
		{"0:65535", PortRange{}, true},
		{"0-0", PortRange{}, true},
		{"65535", PortRange{65535, 65535}, false},
		{"1-2", PortRange{1, 2}, false},
		{"6000:6007", PortRange{6000, 6007}, false},
		{"5-5", PortRange{5, 5}, false},
		{"65536", PortRange{}, true},
		{"2-1", PortRange{}, true},
		{"", PortRange{}, true},
		{"1-", PortRange{}, true},
		{"a-b", PortRange{}, true},
	}
	for _, tt := range tests {
		got, err := ParsePortRange(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParsePortRange(%q) = %v, %v", tt.in, got, err)
		}
	}
}
