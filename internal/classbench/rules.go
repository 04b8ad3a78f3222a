package classbench

import "net/netip"

// Rule is one converted ingress rule, as ToRulesYAML writes it.
type Rule struct {
	// Proto is "tcp", "udp", "all" or a protocol number ("1", "47").
	Proto string
	// Ports is "" (every port), "N" or "LO-HI"; only tcp and udp have
	// ports.
	Ports string
	From  netip.Prefix
}

// Rules converts boxes into ingress rules the way ToRulesYAML does (see
// the package comment), in the boxes' order, equal rules once.
func Rules(boxes []Box) []Rule {
	rs := convert(boxes)
	out := make([]Rule, len(rs))
	for i, r := range rs {
		out[i] = Rule{Proto: r.proto, Ports: r.ports, From: r.from}
	}
	return out
}
