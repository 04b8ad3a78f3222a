package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/types/direction"
)

func TestParseLimit(t *testing.T) {
	tests := []struct {
		name string
		rule string
		want *Limit
	}{
		{"ufw's", "{proto: tcp, ports: 22, from: [any], limit: {conns: 6, per: 30s}}", &Limit{6, 30 * time.Second}},
		{"minutes", "{proto: tcp, ports: 22, from: [any], limit: {per: 2m, conns: 20}}", &Limit{20, 2 * time.Minute}},
		{"none", "{proto: tcp, ports: 22, from: [any]}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("l.yaml", []byte(rulesOf("      - "+tt.rule)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := f.Groups[0].Ingress[0].Limit
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("limit = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseLimitErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"egress", "version: 1\ngroups:\n  - name: a\n    egress:\n      - {proto: tcp, ports: 22, to: [any], limit: {conns: 6, per: 30s}}\n",
			"e.yaml:5:44: limit on an egress rule: limit brakes peers that connect to the host, only ingress rules take it"},
		{"not a mapping", rulesOf("      - {proto: tcp, ports: 22, from: [any], limit: 6}"),
			"e.yaml:5:53: limit: expected a mapping {conns: N, per: DURATION} such as {conns: 6, per: 30s}, got \"6\""},
		{"unknown key", rulesOf("      - {proto: tcp, ports: 22, from: [any], limit: {conns: 6, per: 30s, burst: 2}}"),
			"e.yaml:5:74: unknown key \"burst\" in limit: expected one of conns, per"},
		{"no per", rulesOf("      - {proto: tcp, ports: 22, from: [any], limit: {conns: 6}}"),
			"e.yaml:5:53: limit without conns or per: expected {conns: N, per: DURATION} such as {conns: 6, per: 30s}"},
		{"conns zero", rulesOf("      - {proto: tcp, ports: 22, from: [any], limit: {conns: 0, per: 30s}}"),
			"e.yaml:5:61: limit conns 0 out of range: expected 1-20"},
		{"conns too many", rulesOf("      - {proto: tcp, ports: 22, from: [any], limit: {conns: 21, per: 30s}}"),
			"e.yaml:5:61: limit conns 21 out of range: expected 1-20"},
		{"conns string", rulesOf("      - {proto: tcp, ports: 22, from: [any], limit: {conns: six, per: 30s}}"),
			"e.yaml:5:61: limit conns: expected an integer, got \"six\""},
		{"bad per", rulesOf("      - {proto: tcp, ports: 22, from: [any], limit: {conns: 6, per: 30}}"),
			"e.yaml:5:69: bad limit per \"30\": expected a duration such as 30s, 2m or 1h"},
		{"per too short", rulesOf("      - {proto: tcp, ports: 22, from: [any], limit: {conns: 6, per: 500ms}}"),
			"e.yaml:5:69: limit per 500ms out of range: expected 1s to 24h"},
		{"per not whole", rulesOf("      - {proto: tcp, ports: 22, from: [any], limit: {conns: 6, per: 1500ms}}"),
			"e.yaml:5:69: limit per 1.5s: expected whole seconds"},
		{"per too long", rulesOf("      - {proto: tcp, ports: 22, from: [any], limit: {conns: 6, per: 25h}}"),
			"e.yaml:5:69: limit per 25h out of range: expected 1s to 24h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("e.yaml", []byte(tt.src), Options{})
			if err == nil {
				t.Fatal("no error")
			}
			first := err.(ErrorList)[0].Error()
			if first != tt.want {
				t.Errorf("error\n got %s\nwant %s", first, tt.want)
			}
		})
	}
}

// A limit written by an edit reads back as the same limit, and the
// rule's ID does not depend on it (it names the traffic).
func TestAddRulesLimitRoundTrip(t *testing.T) {
	src := []byte("version: 1\ngroups:\n  - name: local\n    ingress: []\n")
	r := Rule{Proto: Proto{Num: 6}, Ports: []PortRange{{22, 22}}, Peers: []string{"any"}, Limit: &Limit{3, 5 * time.Second}}
	out, err := AddRules("a.yaml", src, "local", direction.Ingress, []Rule{r}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "limit: {conns: 3, per: 5s}") {
		t.Errorf("file:\n%s", out)
	}
	f, err := Parse("a.yaml", out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := f.Groups[0].Ingress[0]
	if got.Limit == nil || *got.Limit != (Limit{3, 5 * time.Second}) {
		t.Errorf("limit = %v", got.Limit)
	}
	plain := strings.Replace(string(out), ", limit: {conns: 3, per: 5s}", "", 1)
	g, err := Parse("a.yaml", []byte(plain), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Groups[0].Ingress[0].ID != got.ID {
		t.Errorf("ID changed with the limit: %s vs %s", g.Groups[0].Ingress[0].ID, got.ID)
	}
}

func TestFormatLimitPer(t *testing.T) {
	for d, want := range map[time.Duration]string{30 * time.Second: "30s", 2 * time.Minute: "2m", 90 * time.Second: "1m30s", time.Hour: "1h", 24 * time.Hour: "24h", 3723 * time.Second: "1h2m3s"} {
		if got := FormatLimitPer(d); got != want {
			t.Errorf("FormatLimitPer(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseLimitPer(FormatLimitPer(d)); err != nil || back != d {
			t.Errorf("ParseLimitPer(%q) = %v, %v", FormatLimitPer(d), back, err)
		}
	}
}
