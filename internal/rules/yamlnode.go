package rules

import (
	"slices"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/types/direction"
	"gopkg.in/yaml.v3"
)

// FormatRule renders a rule as the one-line YAML flow mapping an edit
// writes, e.g. {proto: tcp, ports: 443, from: [any]}.
func FormatRule(r *Rule, dir direction.Dir) string {
	b, err := yaml.Marshal(ruleNode(r, dir))
	if err != nil {
		return r.Format(dir)
	}
	return strings.TrimSpace(string(b))
}

func ruleNode(r *Rule, dir direction.Dir) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	add := func(k string, v *yaml.Node) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, v)
	}
	if !r.Proto.All && r.Proto.String() == strconv.Itoa(int(r.Proto.Num)) {
		add("proto", num(int(r.Proto.Num))) // a protocol without a name
	} else {
		add("proto", str(r.Proto.String()))
	}
	switch len(r.Ports) {
	case 0:
	case 1:
		add("ports", portNode(r.Ports[0]))
	default:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, p := range r.Ports {
			seq.Content = append(seq.Content, portNode(p))
		}
		add("ports", seq)
	}
	if r.ICMP != nil {
		im := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		im.Content = append(im.Content, str("type"), num(int(r.ICMP.Type)))
		if !r.ICMP.AnyCode {
			im.Content = append(im.Content, str("code"), num(int(r.ICMP.Code)))
		}
		add("icmp", im)
	}
	peers := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, p := range r.Peers {
		peers.Content = append(peers.Content, str(p))
	}
	add(dir.PeerWord(), peers)
	if r.Limit != nil {
		add("limit", limitNode(r.Limit))
	}
	if r.Description != "" {
		add("description", str(r.Description))
	}
	return m
}

func portNode(p PortRange) *yaml.Node {
	if p.Lo == p.Hi {
		return num(int(p.Lo))
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p.String()}
}

func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func num(n int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(n)}
}

func newGroupNode(name string, ifaces []string, dir direction.Dir, items []*yaml.Node) *yaml.Node {
	g := &yaml.Node{Kind: yaml.MappingNode}
	g.Content = append(g.Content,
		str("name"), str(name),
		str("description"), str(NewGroupDescription))
	if ifaces != nil {
		g.Content = append(g.Content, str("interfaces"), ifaceList(ifaces))
	}
	g.Content = append(g.Content,
		str(dir.Key()), &yaml.Node{Kind: yaml.SequenceNode, Content: items})
	if dir == direction.Ingress {
		g.Content = append(g.Content, str("egress"), &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle})
	}
	return g
}

// snapshot copies a node and its list of children, so that a splice can
// see the tree as it was before the edit.
func snapshot(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = slices.Clone(n.Content)
	return &c
}

// mapEntry returns the key and value nodes of key in mapping m.
func mapEntry(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i], deref(m.Content[i+1])
		}
	}
	return nil, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	_, v := mapEntry(m, key)
	return v
}
