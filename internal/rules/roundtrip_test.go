package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/types/direction"
	"gopkg.in/yaml.v3"
)

// encodeFile writes a File back as a rules file: prefix lists, then the
// groups, each rule as FormatRule writes it (the encoder edits use). The
// package has no whole-file encoder (edits splice text into the user's
// file), so this one lives with the test that uses it.
func encodeFile(t *testing.T, f *File) []byte {
	t.Helper()
	root := &yaml.Node{Kind: yaml.MappingNode}
	add := func(m *yaml.Node, k string, v *yaml.Node) { m.Content = append(m.Content, str(k), v) }
	add(root, "version", num(f.Version))
	if len(f.PrefixLists) > 0 {
		lists := &yaml.Node{Kind: yaml.MappingNode}
		for _, pl := range f.PrefixLists {
			seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, p := range pl.Prefixes {
				seq.Content = append(seq.Content, str(p.String()))
			}
			add(lists, pl.Name, seq)
		}
		add(root, "prefix_lists", lists)
	}
	groups := &yaml.Node{Kind: yaml.SequenceNode}
	for _, g := range f.Groups {
		gn := &yaml.Node{Kind: yaml.MappingNode}
		add(gn, "name", str(g.Name))
		if g.Description != "" {
			add(gn, "description", str(g.Description))
		}
		if g.Interfaces != nil {
			ifs := &yaml.Node{Kind: yaml.SequenceNode}
			for _, name := range g.Interfaces {
				ifs.Content = append(ifs.Content, str(name))
			}
			add(gn, "interfaces", ifs)
		}
		if g.Audit {
			add(gn, "mode", str("audit"))
		}
		rulesNode := func(rs []Rule, dir direction.Dir) *yaml.Node {
			seq := &yaml.Node{Kind: yaml.SequenceNode}
			for i := range rs {
				seq.Content = append(seq.Content, ruleNode(&rs[i], dir))
			}
			return seq
		}
		add(gn, "ingress", rulesNode(g.Ingress, direction.Ingress))
		if !g.EgressOmitted {
			add(gn, "egress", rulesNode(g.Egress, direction.Egress))
		}
		groups.Content = append(groups.Content, gn)
	}
	add(root, "groups", groups)
	if f.ACL.Len() > 0 {
		acl := &yaml.Node{Kind: yaml.MappingNode}
		for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
			seq := &yaml.Node{Kind: yaml.SequenceNode}
			for i := range f.ACL.List(d) {
				seq.Content = append(seq.Content, aclNode(&f.ACL.List(d)[i], d))
			}
			add(acl, d.Key(), seq)
		}
		add(root, "acl", acl)
	}
	b, err := yaml.Marshal(root)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

// meaning renders what a File says, without positions, hashes or
// warnings, and with no difference between a missing list and an empty one.
func meaning(f *File) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d\n", f.Version)
	for _, pl := range f.PrefixLists {
		fmt.Fprintf(&b, "list %q %v\n", pl.Name, pl.Prefixes)
	}
	for _, g := range f.Groups {
		fmt.Fprintf(&b, "group %q %q egress-omitted=%v interfaces=%q audit=%v\n", g.Name, g.Description, g.EgressOmitted, g.Interfaces, g.Audit)
		for dir, rs := range [][]Rule{g.Ingress, g.Egress} {
			for _, r := range rs {
				icmp := "-"
				if r.ICMP != nil {
					icmp = r.ICMP.String()
				}
				fmt.Fprintf(&b, "  %d %v %v %s %q %v %q\n", dir, r.Proto, r.Ports, icmp, r.Peers, r.Prefixes, r.Description)
			}
		}
	}
	for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
		for _, e := range f.ACL.List(d) {
			fmt.Fprintf(&b, "acl %s %q %v %q %s\n", d.Key(), e.Format(d), e.Prefixes, e.Description, e.Expires.UTC())
		}
	}
	return b.String()
}

// checkRoundTrip: a File, written back and parsed again, means the same.
func checkRoundTrip(t *testing.T, f *File) {
	t.Helper()
	enc := encodeFile(t, f)
	g, err := Parse("again.yaml", enc, Options{MaxRules: 1000})
	if err != nil {
		t.Fatalf("the file written back does not parse: %v\n%s", err, enc)
	}
	if a, b := meaning(f), meaning(g); a != b {
		t.Fatalf("the file written back means something else\nwritten:\n%s\nfirst:\n%s\nagain:\n%s", enc, a, b)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct{ name, body string }{
		{"ports and peers", rulesOf("      - {proto: tcp, ports: [80, \"1000-2000\"], from: [any, 198.51.100.7/24], description: web}")},
		{"icmp and numbers", "version: 1\ngroups:\n  - name: a\n    ingress:\n      - {proto: icmp, icmp: {type: 8, code: 0}, from: [any4]}\n      - {proto: 47, from: ['2001:db8::/32']}\n    egress: []\n"},
		{"prefix list", "version: 1\nprefix_lists:\n  office: [198.51.100.0/24, 2001:db8::1]\ngroups:\n  - name: \"a: b\"\n    description: \"quoted \\\"x\\\"\"\n    ingress:\n      - {proto: all, from: [office]}\n    egress:\n      - {proto: udp, to: [office, any6]}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("f.yaml", []byte(tt.body), Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, f)
		})
	}
}
