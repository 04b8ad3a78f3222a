package lifecycle

import (
	"net/netip"
	"slices"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// Admission is what the ingress rules of a file admit to one protocol's
// port range from one address family: status's answer for a published
// container port.
type Admission struct {
	// Any: a rule admits every peer of the family to the whole range.
	Any bool
	// Peers are the prefixes of the family, canonical, that rules
	// covering the whole range admit (when not Any).
	Peers []string
	// Partly: some rule admits part of the range only.
	Partly bool
}

// Admits reports what f's ingress rules admit to ports lo..hi of proto
// from peers of the family (v6 or not), over every group. It leaves the
// ACL and interface scopes aside: a port the groups admit may still be
// denied by an ACL entry, or admitted only on some interfaces.
func Admits(f *rules.File, proto ipproto.Proto, lo, hi uint16, v6 bool) Admission {
	var a Admission
	for gi := range f.Groups {
		for ri := range f.Groups[gi].Ingress {
			r := &f.Groups[gi].Ingress[ri]
			if !r.Proto.All && r.Proto.Num != proto {
				continue
			}
			whole, part := covers(r.Ports, lo, hi)
			if !whole {
				a.Partly = a.Partly || part && hasFamily(r, v6)
				continue
			}
			for _, p := range r.Prefixes {
				if p.Addr().Is6() != v6 {
					continue
				}
				if p.Bits() == 0 {
					a.Any = true
				}
				if s := p.String(); !slices.Contains(a.Peers, s) {
					a.Peers = append(a.Peers, s)
				}
			}
		}
	}
	if a.Any {
		a.Peers = nil
	}
	return a
}

// covers reports whether ports (nil: all) hold all of lo..hi, or some.
func covers(ports []rules.PortRange, lo, hi uint16) (whole, part bool) {
	if ports == nil {
		return true, true
	}
	for _, p := range ports {
		if p.Lo <= lo && hi <= p.Hi {
			return true, true
		}
		if p.Lo <= hi && lo <= p.Hi {
			part = true
		}
	}
	return false, part
}

func hasFamily(r *rules.Rule, v6 bool) bool {
	return slices.ContainsFunc(r.Prefixes, func(p netip.Prefix) bool { return p.Addr().Is6() == v6 })
}
