package rules

import "slices"

// SameTraffic reports whether two rules allow exactly the same
// connections: same protocol, same set of ports, same ICMP type and code
// and the same peer prefixes (both must have Prefixes resolved). The
// description does not count.
func (r *Rule) SameTraffic(o *Rule) bool {
	if r.Proto != o.Proto {
		return false
	}
	if !slices.Equal(normPorts(r.Ports), normPorts(o.Ports)) {
		return false
	}
	if (r.ICMP == nil) != (o.ICMP == nil) || r.ICMP != nil && *r.ICMP != *o.ICMP {
		return false
	}
	return slices.Equal(sortedPrefixes(r.Prefixes), sortedPrefixes(o.Prefixes)) &&
		slices.Equal(slices.Sorted(slices.Values(r.GroupRefs)), slices.Sorted(slices.Values(o.GroupRefs)))
}

// normPorts sorts and merges port ranges; nil (all ports) becomes 0-65535.
func normPorts(ps []PortRange) []PortRange {
	if len(ps) == 0 {
		return []PortRange{{0, 65535}}
	}
	s := slices.Clone(ps)
	slices.SortFunc(s, func(a, b PortRange) int { return int(a.Lo) - int(b.Lo) })
	out := s[:1]
	for _, r := range s[1:] {
		last := &out[len(out)-1]
		if int(r.Lo) <= int(last.Hi)+1 {
			last.Hi = max(last.Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}
