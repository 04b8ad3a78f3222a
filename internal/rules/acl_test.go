package rules

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/types/direction"
)

func TestParseACL(t *testing.T) {
	src := `version: 1
prefix_lists:
  office: [203.0.113.0/24]
acl:
  ingress:
    - {number: 200, action: allow, proto: all, from: [office]}
    - {number: 100, action: deny, proto: tcp, ports: 22, from: [198.51.100.9], description: brute force, expires: 2026-01-02T15:04:05Z}
    - {number: 300, action: deny, proto: icmp, icmp: {type: 8}, from: [any4]}
  egress:
    - {number: 100, action: deny, proto: udp, ports: [53, "5353"], to: ["2001:db8::53"]}
groups:
  - name: a
`
	f, err := Parse("acl.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if f.ACL.Len() != 4 || len(f.ACL.Ingress) != 3 || len(f.ACL.Egress) != 1 {
		t.Fatalf("acl = %+v", f.ACL)
	}
	in := f.ACL.Ingress
	if in[0].Number != 200 || in[0].Action != Allow || !in[0].Proto.All || fmt.Sprint(in[0].Prefixes) != "[203.0.113.0/24]" {
		t.Errorf("entry 200 = %+v", in[0])
	}
	want := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	if in[1].Number != 100 || in[1].Action != Deny || in[1].Description != "brute force" || !in[1].Expires.Equal(want) {
		t.Errorf("entry 100 = %+v", in[1])
	}
	if in[1].Pos != (Pos{7, 7}) {
		t.Errorf("entry 100 at %+v, want 7:7", in[1].Pos)
	}
	if !in[1].Expired(want) || in[1].Expired(want.Add(-time.Second)) || in[0].Expired(want) {
		t.Errorf("Expired is wrong")
	}
	if got := in[1].Format(direction.Ingress); got != "100 deny tcp 22 from 198.51.100.9 until 2026-01-02T15:04:05Z" {
		t.Errorf("Format = %q", got)
	}
	if got := f.ACL.Egress[0].Format(direction.Egress); got != "100 deny udp 53,5353 to 2001:db8::53" {
		t.Errorf("Format = %q", got)
	}
	if got := fmt.Sprint(f.ACL.Sorted(direction.Ingress)); got != "[1 0 2]" {
		t.Errorf("Sorted = %s", got)
	}
	if f.ACL.Find(direction.Ingress, 300) != 2 || f.ACL.Find(direction.Egress, 300) != -1 {
		t.Errorf("Find is wrong")
	}
	if f.NumRules() != 0 {
		t.Errorf("NumRules = %d: ACL entries are no group rules", f.NumRules())
	}
}

// A file without acl, or with an empty one, has no entries.
func TestParseNoACL(t *testing.T) {
	for _, src := range []string{
		"version: 1\ngroups: [{name: a}]\n",
		"version: 1\nacl:\ngroups: [{name: a}]\n",
		"version: 1\nacl: {ingress: [], egress: }\ngroups: [{name: a}]\n",
	} {
		f, err := Parse("n.yaml", []byte(src), Options{})
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if f.ACL.Len() != 0 {
			t.Errorf("%q: acl = %+v", src, f.ACL)
		}
	}
}

// aclOf wraps acl ingress entry lines into a file; the first is line 4.
func aclOf(lines ...string) string {
	s := "version: 1\nacl:\n  ingress:\n"
	for _, l := range lines {
		s += l + "\n"
	}
	return s + "groups: [{name: a}]\n"
}

func TestParseACLErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"acl a list", "version: 1\nacl: [1]\ngroups: [{name: a}]\n", "e.yaml:2:6: acl: expected a mapping with ingress and egress lists of numbered entries, got a list"},
		{"acl unknown key", "version: 1\nacl: {inbound: []}\ngroups: [{name: a}]\n", "e.yaml:2:7: unknown key \"inbound\" in acl: expected one of ingress, egress"},
		{"entries a mapping", "version: 1\nacl: {ingress: {a: b}}\ngroups: [{name: a}]\n", "e.yaml:2:16: acl ingress: expected a list, got a mapping"},
		{"entry a string", aclOf("    - deny 22"), "e.yaml:4:7: acl ingress entry: expected a mapping such as {number: 100, action: deny, proto: tcp, ports: 22, from: [203.0.113.9]}, got \"deny 22\""},
		{"no number", aclOf("    - {action: deny, proto: all, from: [any]}"), "e.yaml:4:7: acl ingress entry without number: expected number: 1-32766 (lowest first)"},
		{"number zero", aclOf("    - {number: 0, action: deny, proto: all, from: [any]}"), "e.yaml:4:16: acl entry number 0 out of range: expected 1-32766"},
		{"number too big", aclOf("    - {number: 32767, action: deny, proto: all, from: [any]}"), "e.yaml:4:16: acl entry number 32767 out of range: expected 1-32766"},
		{"number a word", aclOf("    - {number: first, action: deny, proto: all, from: [any]}"), "e.yaml:4:16: acl entry number: expected an integer, got \"first\""},
		{"duplicate number", aclOf("    - {number: 100, action: deny, proto: all, from: [any]}", "    - {number: 100, action: allow, proto: tcp, from: [any]}"), "e.yaml:5:16: duplicate acl ingress number 100 (first at line 4): numbers are unique in a direction"},
		{"no action", aclOf("    - {number: 1, proto: all, from: [any]}"), "e.yaml:4:7: acl ingress entry without action: expected action: allow or deny"},
		{"bad action", aclOf("    - {number: 1, action: reject, proto: all, from: [any]}"), "e.yaml:4:27: bad action \"reject\": expected allow or deny"},
		{"no proto", aclOf("    - {number: 1, action: deny, from: [any]}"), "e.yaml:4:7: acl ingress entry without proto: expected proto: tcp, udp, icmp, icmpv6, all or a number"},
		{"ports on all", aclOf("    - {number: 1, action: deny, proto: all, ports: 22, from: [any]}"), "e.yaml:4:45: ports on proto all: only tcp and udp rules take ports"},
		{"to in ingress", aclOf("    - {number: 1, action: deny, proto: all, to: [any]}"), "e.yaml:4:7: acl ingress entry without from: expected from: [CIDR, address, prefix list or any]"},
		{"bad peer", aclOf("    - {number: 1, action: deny, proto: all, from: [1.2.3]}"), "e.yaml:4:52: bad address \"1.2.3\": expected a CIDR, an address, a prefix list name or any"},
		{"undefined list", aclOf("    - {number: 1, action: deny, proto: all, from: [ofice]}"), "e.yaml:4:52: undefined prefix list \"ofice\": define it under prefix_lists, or write a CIDR or any"},
		{"bad expires", aclOf("    - {number: 1, action: deny, proto: all, from: [any], expires: tomorrow}"), "e.yaml:4:67: bad expires \"tomorrow\": expected an RFC 3339 time such as 2026-01-02T15:04:05Z"},
		{"expires without zone", aclOf("    - {number: 1, action: deny, proto: all, from: [any], expires: \"2026-01-02T15:04:05\"}"), "e.yaml:4:67: bad expires \"2026-01-02T15:04:05\": expected an RFC 3339 time such as 2026-01-02T15:04:05Z"},
		{"repeated key", aclOf("    - {number: 1, number: 2, action: deny, proto: all, from: [any]}"), "e.yaml:4:19: key \"number\" repeated in acl ingress entry"},
		{"egress uses to", "version: 1\nacl:\n  egress:\n    - {number: 1, action: deny, proto: all, from: [any]}\ngroups: [{name: a}]\n", "e.yaml:4:7: acl egress entry without to: expected to: [CIDR, address, prefix list or any]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("e.yaml", []byte(tt.src), Options{})
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", f.ACL)
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

// ACL entries count toward the rule limit.
func TestACLRuleLimit(t *testing.T) {
	src := aclOf("    - {number: 1, action: deny, proto: all, from: [any]}", "    - {number: 2, action: deny, proto: all, from: [any]}")
	_, err := Parse("e.yaml", []byte(src), Options{MaxRules: 1})
	if err == nil || err.Error() != "e.yaml:5:7: too many rules: this is rule 2, the limit is 1" {
		t.Errorf("err = %v", err)
	}
}
