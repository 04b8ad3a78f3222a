package rules

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/types/direction"
	"gopkg.in/yaml.v3"
)

func (d *decoder) rules(n *yaml.Node, dir direction.Dir) []Rule {
	items, ok := d.seq(n, dir.Key())
	if !ok {
		return nil
	}
	out := make([]Rule, 0, len(items))
	for _, it := range items {
		it = deref(it)
		d.nrules++
		if d.nrules > d.opts.maxRules() {
			if !d.tooMany {
				d.tooMany = true
				d.errorf(it, "too many rules: this is rule %d, the limit is %d", d.nrules, d.opts.maxRules())
			}
			continue
		}
		if r, ok := d.rule(it, dir); ok {
			out = append(out, r)
		}
	}
	return out
}

func (d *decoder) rule(n *yaml.Node, dir direction.Dir) (Rule, bool) {
	what := dir.Key() + " rule"
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping such as {proto: tcp, ports: 443, from: [any]}, got %s", what, kindName(n))
		return Rule{}, false
	}
	if dir == direction.Egress {
		return d.traffic(d.egressLimit(n), what, dir, nil, nil)
	}
	var lim *Limit
	r, ok := d.traffic(n, what, dir, []string{"limit"}, func(_ string, k, v *yaml.Node) { lim = d.limit(k, v, dir) })
	r.Limit = lim
	return r, ok
}

// traffic reads a rule's keys (proto, ports, icmp, from or to,
// description) from mapping n, plus the extra keys, which it hands to
// extra. It reports whether no error was found, in extra's keys too.
func (d *decoder) traffic(n *yaml.Node, what string, dir direction.Dir, extraKeys []string, extra func(key string, k, v *yaml.Node)) (Rule, bool) {
	peerKey := dir.PeerWord()
	errsBefore := len(d.errs)
	r := Rule{Pos: pos(n)}
	var protoNode, portsNode, icmpNode, peersNode *yaml.Node
	keys := append(extraKeys[:len(extraKeys):len(extraKeys)], "proto", "ports", "icmp", peerKey, "description")
	if len(extraKeys) == 1 && extraKeys[0] == "limit" { // a rule's own key, said after the others
		keys = append(keys[1:], "limit")
	}
	d.fields(n, what, keys, func(key string, k, v *yaml.Node) {
		if contains(extraKeys, key) {
			extra(key, k, v)
			return
		}
		switch key {
		case "proto":
			protoNode = v
		case "ports":
			portsNode = k
			r.Ports = d.ports(v)
		case "icmp":
			icmpNode = k
			r.ICMP = d.icmp(v)
		case "description":
			r.Description, _ = d.str(v, "rule description")
		default: // from or to
			peersNode = v
		}
	})
	if protoNode == nil {
		d.errorf(n, "%s without proto: expected proto: tcp, udp, icmp, icmpv6, all or a number", what)
	} else if s, ok := d.scalar(protoNode, "proto", "tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255"); ok {
		p, err := ParseProto(s)
		if err != nil {
			d.errorf(protoNode, "%v", err)
		} else {
			r.Proto = p
			if portsNode != nil && !p.HasPorts() {
				d.errorf(portsNode, "ports on proto %s: only tcp and udp rules take ports", p)
			}
			if icmpNode != nil && !p.IsICMP() {
				d.errorf(icmpNode, "icmp on proto %s: only icmp and icmpv6 rules take an icmp type", p)
			}
		}
	}
	if peersNode == nil {
		d.errorf(n, "%s without %s: expected %s: [CIDR, address, prefix list or any]", what, peerKey, peerKey)
	} else {
		r.Peers, r.Prefixes = d.peers(peersNode, peerKey)
		r.GroupRefs = groupRefsOf(r.Peers)
	}
	return r, len(d.errs) == errsBefore
}

// ports reads an int, a "lo-hi" string, or a list of those.
func (d *decoder) ports(n *yaml.Node) []PortRange {
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			d.errorf(n, "ports is an empty list: leave ports out for all ports")
			return nil
		}
		out := make([]PortRange, 0, len(n.Content))
		for _, it := range n.Content {
			if r, ok := d.portRange(deref(it)); ok {
				out = append(out, r)
			}
		}
		return out
	}
	if r, ok := d.portRange(n); ok {
		return []PortRange{r}
	}
	return nil
}

func (d *decoder) portRange(n *yaml.Node) (PortRange, bool) {
	const expected = "a port 0-65535 or a range \"lo-hi\""
	s, ok := d.scalar(n, "port", expected)
	if !ok {
		return PortRange{}, false
	}
	r, err := ParsePortRange(s)
	if err != nil {
		d.errorf(n, "%v", err)
		return PortRange{}, false
	}
	return r, true
}

// ParsePortRange reads "443", "1024-65535" (or "1024:65535"). Port 0 is
// refused, alone or as the start of a range, as ufw refuses it: it is no
// service, and a rule for every port leaves ports out.
func ParsePortRange(s string) (PortRange, error) {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "-") {
		return PortRange{}, fmt.Errorf("bad port %s: expected a port 0-65535 or a range \"lo-hi\"", clip(t))
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		lo, hi, isRange = strings.Cut(s, ":")
	}
	a, err := parsePort(strings.TrimSpace(lo))
	if err != nil {
		return PortRange{}, err
	}
	if a == 0 && !isRange {
		return PortRange{}, fmt.Errorf("bad port %q: port 0 is no service (expected 1-65535)", s)
	}
	if a == 0 {
		return PortRange{}, fmt.Errorf("bad port range %q: port 0 is no service (start at 1, or leave ports out for all ports)", s)
	}
	if !isRange {
		return PortRange{a, a}, nil
	}
	b, err := parsePort(strings.TrimSpace(hi))
	if err != nil {
		return PortRange{}, err
	}
	if b < a {
		return PortRange{}, fmt.Errorf("inverted port range %q: expected the low port first", clip(s))
	}
	return PortRange{a, b}, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad port %q: expected a port 0-65535 or a range \"lo-hi\"", clip(s))
	}
	if n > 65535 {
		return 0, fmt.Errorf("port %d out of range: expected 0-65535", n)
	}
	return uint16(n), nil
}

func (d *decoder) icmp(n *yaml.Node) *ICMP {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "icmp: expected a mapping {type: T, code: C}, got %s", kindName(n))
		return nil
	}
	var typ, code *yaml.Node
	d.fields(n, "icmp", []string{"type", "code"}, func(key string, k, v *yaml.Node) {
		if key == "type" {
			typ = v
		} else {
			code = v
		}
	})
	if typ == nil {
		if code != nil {
			d.errorf(n, "icmp code without type: expected type: T (code is optional)")
		} else {
			d.errorf(n, "icmp without type: expected {type: T} or leave icmp out for every type")
		}
		return nil
	}
	out := &ICMP{AnyCode: true}
	t, ok := d.intValue(typ, "icmp type")
	if !ok {
		return nil
	}
	if t < 0 || t > 255 {
		d.errorf(typ, "icmp type %d out of range: expected 0-255", t)
		return nil
	}
	out.Type = uint8(t)
	if code != nil {
		c, ok := d.intValue(code, "icmp code")
		if !ok {
			return nil
		}
		if c < 0 || c > 255 {
			d.errorf(code, "icmp code %d out of range: expected 0-255", c)
			return nil
		}
		out.Code, out.AnyCode = uint8(c), false
	}
	return out
}

func (d *decoder) peers(n *yaml.Node, key string) ([]string, []netip.Prefix) {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		items = n.Content
	case yaml.ScalarNode:
		if n.Tag != "!!null" {
			items = []*yaml.Node{n}
		}
	}
	if n.Kind == yaml.SequenceNode && len(items) == 0 {
		d.errorf(n, "%s is an empty list: expected at least one CIDR, address, prefix list name or any", key)
		return nil, nil
	}
	if len(items) == 0 {
		d.errorf(n, "%s: expected a list of CIDRs, addresses, prefix list names or any, got %s", key, kindName(n))
		return nil, nil
	}
	words := make([]string, 0, len(items))
	var out []netip.Prefix
	seen := map[netip.Prefix]bool{}
	add := func(p netip.Prefix) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, it := range items {
		it = deref(it)
		s, ok := d.scalar(it, key+" entry", "a CIDR, an address, a prefix list name or any")
		if !ok {
			continue
		}
		words = append(words, s)
		if d.groupRef(it, s) {
			continue
		}
		if ps, ok := builtinPeer(s); ok {
			for _, p := range ps {
				add(p)
			}
			continue
		}
		if pl := d.lists[s]; pl != nil {
			if len(pl.Prefixes) == 0 {
				d.errorf(it, "prefix list %q is empty: a rule from it would match nothing; add a CIDR to the list or remove it from the rule", s)
				continue
			}
			for _, p := range pl.Prefixes {
				add(p)
			}
			continue
		}
		if listName.MatchString(s) && !strings.Contains(s, ":") {
			d.errorf(it, "undefined prefix list %q: define it under prefix_lists, or write a CIDR or any", s)
			continue
		}
		if p, ok := d.prefix(it, s); ok {
			add(p)
		}
	}
	return words, out
}
