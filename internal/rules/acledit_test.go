package rules

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

func ban(n int, peer string) ACLEntry {
	p := netip.MustParsePrefix(peer)
	return ACLEntry{Number: n, Action: Deny, Proto: Proto{Num: ipproto.TCP}, Ports: []PortRange{{22, 22}},
		Peers: []string{peer}, Prefixes: []netip.Prefix{p}, Description: "brute force",
		Expires: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

const aclEditBase = `# host rules
version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
`

func TestAddACLEntry(t *testing.T) {
	tests := []struct {
		name, src string
		dir       direction.Dir
		want      string
	}{
		{"no acl yet", aclEditBase, direction.Ingress, aclEditBase + `acl:
  ingress:
    - {number: 100, action: deny, proto: tcp, ports: 22, from: [198.51.100.9/32], description: brute force, expires: "2026-01-02T03:04:05Z"}
`},
		{"to a list", "version: 1\nacl:\n  ingress:\n    # bans\n    - {number: 1, action: deny, proto: all, from: [any4]}\n  egress: []\ngroups: [{name: a}]\n", direction.Ingress,
			"version: 1\nacl:\n  ingress:\n    # bans\n    - {number: 1, action: deny, proto: all, from: [any4]}\n    - {number: 100, action: deny, proto: tcp, ports: 22, from: [198.51.100.9/32], description: brute force, expires: \"2026-01-02T03:04:05Z\"}\n  egress: []\ngroups: [{name: a}]\n"},
		{"to an empty list", "version: 1\nacl:\n  ingress: []\ngroups: [{name: a}]\n", direction.Ingress,
			"version: 1\nacl:\n  ingress:\n    - {number: 100, action: deny, proto: tcp, ports: 22, from: [198.51.100.9/32], description: brute force, expires: \"2026-01-02T03:04:05Z\"}\ngroups: [{name: a}]\n"},
		{"a missing direction", "version: 1\nacl:\n  ingress: []  # none\ngroups: [{name: a}]\n", direction.Egress,
			"version: 1\nacl:\n  ingress: []  # none\n  egress:\n    - {number: 100, action: deny, proto: tcp, ports: 22, to: [198.51.100.9/32], description: brute force, expires: \"2026-01-02T03:04:05Z\"}\ngroups: [{name: a}]\n"},
		{"acl null", "version: 1\nacl:\ngroups: [{name: a}]  # x\n", direction.Ingress,
			"version: 1\nacl:\n  ingress:\n    - {number: 100, action: deny, proto: tcp, ports: 22, from: [198.51.100.9/32], description: brute force, expires: \"2026-01-02T03:04:05Z\"}\ngroups: [{name: a}]  # x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AddACLEntry("a.yaml", []byte(tt.src), tt.dir, ban(100, "198.51.100.9/32"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			f, err := Parse("a.yaml", got, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if i := f.ACL.Find(tt.dir, 100); i < 0 || f.ACL.List(tt.dir)[i].Format(tt.dir) != "100 deny tcp 22 "+tt.dir.PeerWord()+" 198.51.100.9/32 until 2026-01-02T03:04:05Z" {
				t.Errorf("entry 100 not added as given: %+v", f.ACL)
			}
		})
	}
	src := "version: 1\nacl:\n  ingress:\n    - {number: 100, action: allow, proto: all, from: [any]}\ngroups: [{name: a}]\n"
	if _, err := AddACLEntry("a.yaml", []byte(src), direction.Ingress, ban(100, "198.51.100.9/32"), Options{}); !errors.Is(err, ErrACLNumberTaken) {
		t.Errorf("a taken number: err = %v, want ErrACLNumberTaken", err)
	}
	if _, err := AddACLEntry("a.yaml", []byte(src), direction.Egress, ban(100, "198.51.100.9/32"), Options{}); err != nil {
		t.Errorf("the same number in the other direction: %v", err)
	}
}

func TestDeleteACLEntries(t *testing.T) {
	src := "version: 1\nacl:\n  ingress:\n    # ban\n    - {number: 100, action: deny, proto: all, from: [198.51.100.9]}\n    - {number: 200, action: allow, proto: all, from: [any]}\ngroups: [{name: a}]\n"
	got, err := DeleteACLEntries("a.yaml", []byte(src), direction.Ingress, []int{200}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "version: 1\nacl:\n  ingress:\n    # ban\n    - {number: 100, action: deny, proto: all, from: [198.51.100.9]}\ngroups: [{name: a}]\n"; string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	got, err = DeleteACLEntries("a.yaml", got, direction.Ingress, []int{100}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "version: 1\nacl:\n  ingress: []\n    # ban\ngroups: [{name: a}]\n"; string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if _, err := DeleteACLEntries("a.yaml", []byte(src), direction.Egress, []int{100}, Options{}); !errors.Is(err, ErrNoACLEntry) {
		t.Errorf("a missing entry: err = %v, want ErrNoACLEntry", err)
	}
}
