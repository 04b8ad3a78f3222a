package rules

import (
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/types/direction"
)

// idBase is the file the ID cases change; rule "web ingress 1" (tcp
// 80,443 from any) and "web egress 0" are the ones followed.
const idBase = `version: 1
prefix_lists:
  office: [198.18.1.0/24, 2001:db8:1::/48]
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [office]}
  - name: web
    ingress:
      - {proto: udp, ports: 53, from: [any]}
      - {proto: tcp, ports: [80, 443], from: [any], description: http}
      - {proto: icmp, icmp: {type: 8}, from: [office]}
    egress:
      - {proto: udp, ports: 123, to: [any]}
`

// idAt parses body and returns the ID of the rule of group g, direction
// d, whose text (Format) is text.
func idAt(t *testing.T, body, g string, d direction.Dir, text string) string {
	t.Helper()
	f, err := Parse("rules.yaml", []byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	gi := f.GroupIndex(g)
	if gi < 0 {
		t.Fatalf("no group %s", g)
	}
	for _, ref := range f.Numbered() {
		if ref.Group == gi && ref.Dir == d && f.RuleAt(ref).Format(d) == text {
			return f.RuleID(ref)
		}
	}
	t.Fatalf("no %s rule %q in group %s", d, text, g)
	return ""
}

func TestRuleIDStable(t *testing.T) {
	in, out := direction.Ingress, direction.Egress
	web := idAt(t, idBase, "web", in, "tcp 80,443 from any")
	ntp := idAt(t, idBase, "web", out, "udp 123 to any")
	ping := idAt(t, idBase, "web", in, "icmp type 8 from office")
	tests := []struct {
		name  string
		body  string // idBase with one change
		dir   direction.Dir
		text  string // the followed rule's text in body
		group string
		was   string // its ID in idBase
		same  bool
	}{
		{"reparsed (a reload, a restart)", idBase, in, "tcp 80,443 from any", "web", web, true},
		{"a rule added before it", strings.Replace(idBase, "      - {proto: udp, ports: 53", "      - {proto: tcp, ports: 8080, from: [any]}\n      - {proto: udp, ports: 53", 1), in, "tcp 80,443 from any", "web", web, true},
		{"the rule before it removed", strings.Replace(idBase, "      - {proto: udp, ports: 53, from: [any]}\n", "", 1), in, "tcp 80,443 from any", "web", web, true},
		{"rules reordered", strings.Replace(idBase, "      - {proto: udp, ports: 53, from: [any]}\n      - {proto: tcp, ports: [80, 443], from: [any], description: http}\n",
			"      - {proto: tcp, ports: [80, 443], from: [any], description: http}\n      - {proto: udp, ports: 53, from: [any]}\n", 1), in, "tcp 80,443 from any", "web", web, true},
		{"groups reordered", `version: 1
prefix_lists:
  office: [198.18.1.0/24, 2001:db8:1::/48]
groups:
  - name: web
    ingress:
      - {proto: udp, ports: 53, from: [any]}
      - {proto: tcp, ports: [80, 443], from: [any], description: http}
      - {proto: icmp, icmp: {type: 8}, from: [office]}
    egress:
      - {proto: udp, ports: 123, to: [any]}
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [office]}
`, in, "tcp 80,443 from any", "web", web, true},
		{"description changed", strings.Replace(idBase, "description: http", "description: the web site", 1), in, "tcp 80,443 from any", "web", web, true},
		{"description removed", strings.Replace(idBase, ", description: http", "", 1), in, "tcp 80,443 from any", "web", web, true},
		{"ports written in another order", strings.Replace(idBase, "[80, 443]", "[443, 80]", 1), in, "tcp 443,80 from any", "web", web, true},
		{"any written as CIDRs", strings.Replace(idBase, "ports: [80, 443], from: [any]", "ports: [80, 443], from: [\"::/0\", 0.0.0.0/0]", 1), in, "tcp 80,443 from ::/0,0.0.0.0/0", "web", web, true},
		{"a prefix list written out", strings.Replace(idBase, "icmp: {type: 8}, from: [office]", "icmp: {type: 8}, from: [2001:db8:1::/48, 198.18.1.0/24]", 1), in, "icmp type 8 from 2001:db8:1::/48,198.18.1.0/24", "web", ping, true},
		{"egress kept when an ingress rule is added", strings.Replace(idBase, "      - {proto: udp, ports: 53", "      - {proto: tcp, ports: 8080, from: [any]}\n      - {proto: udp, ports: 53", 1), out, "udp 123 to any", "web", ntp, true},

		{"a port changed", strings.Replace(idBase, "[80, 443]", "[80, 444]", 1), in, "tcp 80,444 from any", "web", web, false},
		{"a peer changed", strings.Replace(idBase, "ports: [80, 443], from: [any]", "ports: [80, 443], from: [any4]", 1), in, "tcp 80,443 from any4", "web", web, false},
		{"protocol changed", strings.Replace(idBase, "proto: tcp, ports: [80, 443]", "proto: udp, ports: [80, 443]", 1), in, "udp 80,443 from any", "web", web, false},
		{"an icmp code added", strings.Replace(idBase, "{type: 8}", "{type: 8, code: 0}", 1), in, "icmp type 8 code 0 from office", "web", ping, false},
		{"the prefix list's CIDRs changed", strings.Replace(idBase, "198.18.1.0/24", "198.18.2.0/24", 1), in, "icmp type 8 from office", "web", ping, false},
		{"the group renamed", strings.Replace(idBase, "name: web", "name: www", 1), in, "tcp 80,443 from any", "www", web, false},
		{"moved to egress", strings.Replace(idBase, "      - {proto: udp, ports: 123, to: [any]}", "      - {proto: tcp, ports: [80, 443], to: [any]}", 1), out, "tcp 80,443 to any", "web", web, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := idAt(t, tt.body, tt.group, tt.dir, tt.text)
			if (got == tt.was) != tt.same {
				t.Errorf("ID %s, was %s: want same=%v", got, tt.was, tt.same)
			}
			if !IsRuleID(got) {
				t.Errorf("ID %q is not spelled as one", got)
			}
		})
	}
}

// TestRuleIDPinned pins one ID: IDs are kept by users and scripts across
// restarts and upgrades, so the way they are computed must not change.
func TestRuleIDPinned(t *testing.T) {
	got := idAt(t, idBase, "web", direction.Ingress, "tcp 80,443 from any")
	if want := "sgr-cd50c0891d1f"; got != want {
		t.Errorf("ID %s, want %s", got, want)
	}
}

func TestRuleIDDuplicates(t *testing.T) {
	f, err := Parse("rules.yaml", []byte(`version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 443, from: [any]}
      - {proto: udp, ports: 53, from: [any]}
      - {proto: tcp, ports: 443, from: [0.0.0.0/0, "::/0"], description: again}
      - {proto: tcp, ports: 443, from: [any]}
    egress:
      - {proto: tcp, ports: 443, to: [any]}
  - name: other
    ingress:
      - {proto: tcp, ports: 443, from: [any]}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := f.Groups[0]
	base := g.Ingress[0].ID
	want := []string{base, g.Ingress[1].ID, base + "-2", base + "-3"}
	for i, r := range g.Ingress {
		if r.ID != want[i] {
			t.Errorf("web ingress %d: ID %s, want %s", i, r.ID, want[i])
		}
	}
	seen := map[string]bool{}
	for _, ref := range f.Numbered() {
		id := f.RuleID(ref)
		if seen[id] {
			t.Errorf("ID %s given twice", id)
		}
		seen[id] = true
		if !IsRuleID(id) {
			t.Errorf("ID %q is not spelled as one", id)
		}
		if got, ok := f.RuleByID(id); !ok || got != ref {
			t.Errorf("RuleByID(%s) = %v, %v; want %v", id, got, ok, ref)
		}
	}
	if _, ok := f.RuleByID(base + "-4"); ok {
		t.Errorf("RuleByID found %s-4", base)
	}
}

func TestIsRuleID(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"sgr-0123456789ab", true},
		{"sgr-0123456789ab-2", true},
		{"sgr-0123456789ab-17", true},
		{"sgr-0123456789ab-1", false},
		{"sgr-0123456789ab-0", false},
		{"sgr-0123456789ab-02", false},
		{"sgr-0123456789ab-", false},
		{"sgr-0123456789ab2", false},
		{"sgr-0123456789AB", false},
		{"sgr-0123456789a", false},
		{"sgr-0123456789ag", false},
		{"0123456789ab", false},
		{"3", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsRuleID(tt.s); got != tt.want {
			t.Errorf("IsRuleID(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
