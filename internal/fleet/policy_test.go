package fleet

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
)

const policySrc = `version: 1
prefix_lists:
  office: [198.18.50.0/24]
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: tcp, ports: 22, from: [office]}
  - name: db
    ingress:
      # the web tier only
      - {proto: tcp, ports: 5432, from: [group:web]}
    egress: []
`

// TestSplitAndAssemble splits a rules file into per-key values and
// assembles them back: the same groups and the same meaning (Hash).
func TestSplitAndAssemble(t *testing.T) {
	f, err := rules.Parse("p.yaml", []byte(policySrc), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := SplitFile(f, []byte(policySrc))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Groups) != 2 || len(p.PrefixLists) != 1 {
		t.Fatalf("split into %d groups, %d lists", len(p.Groups), len(p.PrefixLists))
	}
	if !strings.Contains(string(p.Groups["db"]), "# the web tier only") {
		t.Errorf("the db group lost its comment:\n%s", p.Groups["db"])
	}
	back, err := p.File(rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// File sorts groups by name: db, web.
	if back.Groups[0].Name != "db" || back.Groups[1].Name != "web" {
		t.Fatalf("groups %s, %s", back.Groups[0].Name, back.Groups[1].Name)
	}
	members := func(string) []netip.Prefix {
		return rules.HostPrefixes([]netip.Addr{netip.MustParseAddr("198.18.1.1")})
	}
	a, _ := f.ResolveGroups(members).Select([]string{"db", "web"})
	b, _ := back.ResolveGroups(members).Select([]string{"web", "db"})
	reorder := *a
	reorder.Groups = []rules.Group{a.Groups[1], a.Groups[0]}
	if Hash(&reorder) != Hash(b) {
		t.Error("the assembled policy means something else than the file it came from")
	}
	other := back.ResolveGroups(func(string) []netip.Prefix { return nil })
	if Hash(other) == Hash(back.ResolveGroups(members)) {
		t.Error("the hash ignores the members")
	}
}

func TestPolicyErrorsNameTheKey(t *testing.T) {
	l, _ := NewLayout("/fwd/")
	tests := []struct {
		name string
		p    Policy
		want string
	}{
		{"bad port", Policy{Layout: l, Groups: map[string][]byte{
			"a":   []byte("name: a\n"),
			"web": []byte("name: web\ningress:\n  - {proto: tcp, ports: 99999, from: [any]}\n"),
		}}, "/fwd/policy/groups/web:3:25: port 99999 out of range"},
		{"undefined reference", Policy{Layout: l, Groups: map[string][]byte{
			"db": []byte("name: db\ningress:\n  - {proto: tcp, ports: 5432, from: [group:web]}\n"),
		}}, `/fwd/policy/groups/db:3:38: undefined group "web"`},
		{"name differs", Policy{Layout: l, Groups: map[string][]byte{
			"db": []byte("name: web\n"),
		}}, `/fwd/policy/groups/db: holds group "web"`},
		{"bad list", Policy{Layout: l, PrefixLists: map[string][]byte{
			"office": []byte("[198.18.0.0/33]\n"),
		}, Groups: map[string][]byte{"a": []byte("name: a\n")}}, "/fwd/policy/prefix_lists/office:1:2: "},
		{"no groups", Policy{Layout: l}, "policy:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.p.File(rules.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSplitRefusesHostParts(t *testing.T) {
	src := "version: 1\nfailsafe: {ssh: true}\ngroups:\n  - name: web\n"
	f, err := rules.Parse("p.yaml", []byte(src), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SplitFile(f, []byte(src)); err == nil || !strings.Contains(err.Error(), "failsafe is not part of a fleet policy") {
		t.Errorf("err = %v", err)
	}
}

func TestLayout(t *testing.T) {
	l, err := NewLayout("")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Kind{KindGroup, KindPrefixList, KindAssign, KindHost, KindStatus} {
		key := l.Key(k, "web-1.example")
		if gk, name := l.Parse(key); gk != k || name != "web-1.example" {
			t.Errorf("Parse(%s) = %v %q", key, gk, name)
		}
	}
	if k, _ := l.Parse(l.Key(KindSerial, "")); k != KindSerial {
		t.Error("serial key not parsed")
	}
	for _, key := range []string{"/other/policy/groups/a", "/fwd/policy/groups/", "/fwd/hosts/a/b", "/fwd/new/x"} {
		if k, _ := l.Parse(key); k != KindUnknown {
			t.Errorf("Parse(%s) = %v, want unknown", key, k)
		}
	}
	for _, p := range []string{"fwd/", "/fwd", "/a//b/"} {
		if _, err := NewLayout(p); err == nil {
			t.Errorf("NewLayout(%q) accepted", p)
		}
	}
}
