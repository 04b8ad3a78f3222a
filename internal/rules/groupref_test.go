package rules

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestGroupRefsDecode(t *testing.T) {
	tests := []struct {
		name, src string
		wantErr   string // "" means it decodes
		wantRefs  string // fmt of each rule's GroupRefs, in order
	}{
		{name: "forward and self", src: `version: 1
groups:
  - name: db
    ingress:
      - {proto: tcp, ports: 5432, from: [group:web, group:db, 198.18.0.9]}
  - name: web
    ingress:
      - {proto: tcp, ports: 443, from: [any]}
`, wantRefs: "[web db] []"},
		{name: "egress to", src: `version: 1
groups:
  - name: web
    egress:
      - {proto: tcp, ports: 5432, to: [group:web, group:web]}
`, wantRefs: "[web]"},
		{name: "undefined", src: `version: 1
groups:
  - name: db
    ingress:
      - {proto: tcp, ports: 5432, from: [group:web]}
`, wantErr: `x.yaml:5:42: undefined group "web"`},
		{name: "empty name", src: `version: 1
groups:
  - name: db
    ingress:
      - {proto: tcp, ports: 5432, from: ["group:"]}
`, wantErr: `x.yaml:5:42: group reference "group:" names no group`},
		{name: "acl refuses", src: `version: 1
acl:
  ingress:
    - {number: 100, action: deny, proto: tcp, ports: 22, from: [group:web]}
groups:
  - name: web
`, wantErr: `x.yaml:4:7: acl ingress entry names group "web": the acl takes addresses only`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("x.yaml", []byte(tt.src), Options{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, g := range f.Groups {
				for _, r := range append(g.Ingress, g.Egress...) {
					got = append(got, fmt.Sprint(r.GroupRefs))
				}
			}
			if s := strings.Join(got, " "); s != tt.wantRefs {
				t.Errorf("refs = %s, want %s", s, tt.wantRefs)
			}
		})
	}
}

func TestResolveGroupsAndSelect(t *testing.T) {
	src := `version: 1
groups:
  - name: db
    ingress:
      - {proto: tcp, ports: 5432, from: [group:web, 198.18.0.9]}
      - {proto: tcp, ports: 9187, from: [group:monitor]}
  - name: web
  - name: monitor
`
	f, err := Parse("x.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	members := map[string][]netip.Prefix{
		"web": HostPrefixes([]netip.Addr{netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("198.18.1.1")}),
	}
	rf := f.ResolveGroups(func(g string) []netip.Prefix { return members[g] })
	if !rf.GroupsResolved || f.GroupsResolved {
		t.Errorf("GroupsResolved: copy %v, original %v; want true, false", rf.GroupsResolved, f.GroupsResolved)
	}
	in := rf.Groups[0].Ingress
	if got := fmt.Sprint(in[0].Members, in[0].Prefixes); got != "[198.18.1.1/32 2001:db8::1/128] [198.18.0.9/32]" {
		t.Errorf("rule 1 members, prefixes = %s", got)
	}
	if len(in[1].Members) != 0 || len(in[1].Prefixes) != 0 {
		t.Errorf("a reference to a group with no member must match nothing: %v %v", in[1].Members, in[1].Prefixes)
	}
	if f.Groups[0].Ingress[0].Members != nil {
		t.Error("ResolveGroups changed the original file")
	}
	sel, err := rf.Select([]string{"web", "db"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.Groups) != 2 || sel.Groups[0].Name != "db" || sel.Groups[1].Name != "web" {
		t.Errorf("Select kept %v", sel.Groups)
	}
	if _, err := rf.Select([]string{"nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Select of an unknown group: %v", err)
	}
}

func TestResolveRulePeers(t *testing.T) {
	f, err := Parse("x.yaml", []byte("version: 1\ngroups:\n  - name: web\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := Rule{Peers: []string{"group:web", "198.18.0.0/24"}}
	if err := f.ResolveRulePeers(&r); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(r.GroupRefs, r.Prefixes) != "[web] [198.18.0.0/24]" {
		t.Errorf("got %v %v", r.GroupRefs, r.Prefixes)
	}
	bad := Rule{Peers: []string{"group:db"}}
	if err := f.ResolveRulePeers(&bad); err == nil || !strings.Contains(err.Error(), `undefined group "db"`) {
		t.Errorf("undefined group: %v", err)
	}
	if _, err := f.ResolvePeers([]string{"group:web"}); err == nil || !strings.Contains(err.Error(), "acl takes addresses only") {
		t.Errorf("ResolvePeers (the acl's) of a group reference: %v", err)
	}
	same := Rule{Peers: []string{"198.18.0.0/24"}, Prefixes: r.Prefixes}
	if same.SameTraffic(&r) {
		t.Error("a rule without the group reference is not the same traffic")
	}
}
