package rules

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
)

// This file is the one parser of addresses and CIDRs: the rules file, the
// API, fwctl's ufw grammar and check queries all read addresses here, so
// they take the same forms and refuse the rest in the same words.

// ParsePrefix reads an address or a CIDR as every input takes one: a bare
// IPv4 or IPv6 address (a one-address prefix), ADDR/LENGTH, or, as ufw
// takes it, an IPv4 ADDR/NETMASK such as 10.0.0.0/255.255.255.0. A netmask
// must be contiguous (ones then zeros): a security group holds prefixes
// only. Zones and IPv4-mapped IPv6 addresses are refused. The prefix is
// returned masked; hostBits reports whether s had bits set past the mask
// (198.51.100.7/24 is read as 198.51.100.0/24).
func ParsePrefix(s string) (p netip.Prefix, hostBits bool, err error) {
	addr, mask, isCIDR := strings.Cut(s, "/")
	if !isCIDR {
		a, err := parseAddr(s, "a CIDR, an address, a prefix list name or any")
		if err != nil {
			return netip.Prefix{}, false, err
		}
		return netip.PrefixFrom(a, a.BitLen()), false, nil
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("bad CIDR %q: expected an address/length such as 198.51.100.0/24 or 2001:db8::/32", s)
	}
	if err := checkAddr(a, s, "CIDR"); err != nil {
		return netip.Prefix{}, false, err
	}
	n, err := maskBits(a, mask, s)
	if err != nil {
		return netip.Prefix{}, false, err
	}
	p = netip.PrefixFrom(a, n)
	m := p.Masked()
	return m, m.Addr() != a, nil
}

// ParsePeer reads a CIDR or an address as a canonical prefix (host bits
// cleared), as ParsePrefix does.
func ParsePeer(s string) (netip.Prefix, error) {
	p, _, err := ParsePrefix(s)
	return p, err
}

// ParseAddr reads one IPv4 or IPv6 address, such as the peer of a check
// query: no prefix, no zone, no IPv4-mapped IPv6 address (a connection
// with one is IPv6; write the IPv4 address to ask about IPv4).
func ParseAddr(s string) (netip.Addr, error) {
	return parseAddr(s, "an IPv4 or IPv6 address")
}

func parseAddr(s, expected string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bad address %q: expected %s", s, expected)
	}
	if err := checkAddr(a, s, "address"); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

// checkAddr refuses the addresses no rule can name: with a zone, or
// IPv4-mapped IPv6. what is "address" or "CIDR", as s is written.
func checkAddr(a netip.Addr, s, what string) error {
	if a.Zone() != "" {
		return fmt.Errorf("bad %s %q: zones are not allowed", what, s)
	}
	if a.Is4In6() {
		return fmt.Errorf("bad %s %q: IPv4-mapped IPv6; write the IPv4 %s", what, s, what)
	}
	return nil
}

// maskBits reads the part of a CIDR after the slash: a length, or (IPv4)
// a dotted netmask.
func maskBits(a netip.Addr, mask, s string) (int, error) {
	bad := func() error { // made only for an error: a file holds many prefixes
		expected := fmt.Sprintf("expected /0 to /%d", a.BitLen())
		if a.Is4() {
			expected += " or a netmask such as /255.255.255.0"
		}
		return fmt.Errorf("bad mask %q in %q: %s", "/"+mask, s, expected)
	}
	if strings.Contains(mask, ".") {
		m, err := netip.ParseAddr(mask)
		if err != nil || !m.Is4() || !a.Is4() {
			return 0, bad()
		}
		b := m.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if inv := ^v; inv&(inv+1) != 0 {
			return 0, fmt.Errorf("bad mask %q in %q: not contiguous, and a security group holds prefixes only (expected a netmask such as 255.255.255.0)", "/"+mask, s)
		}
		return bits.OnesCount32(v), nil
	}
	n := 0
	for i, c := range mask {
		if c < '0' || c > '9' || i > 0 && mask[0] == '0' || n > a.BitLen() {
			return 0, bad()
		}
		n = n*10 + int(c-'0')
	}
	if mask == "" || n > a.BitLen() {
		return 0, bad()
	}
	return n, nil
}

// ResolvePeers turns peers as written (CIDRs, addresses, prefix-list
// names of this file, any, any4, any6) into canonical prefixes, as the
// decoder does.
func (f *File) ResolvePeers(peers []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	add := func(p netip.Prefix) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, s := range peers {
		if name, ok := GroupRef(s); ok {
			return nil, fmt.Errorf("group reference %q: the acl takes addresses only, name group %s's addresses instead", s, name)
		}
		if ps, ok := builtinPeer(s); ok {
			for _, p := range ps {
				add(p)
			}
			continue
		}
		if i := slices.IndexFunc(f.PrefixLists, func(pl PrefixList) bool { return pl.Name == s }); i >= 0 {
			for _, p := range f.PrefixLists[i].Prefixes {
				add(p)
			}
			continue
		}
		if listName.MatchString(s) && !strings.Contains(s, ":") {
			return nil, fmt.Errorf("undefined prefix list %q: define it under prefix_lists in the rules file, or write a CIDR or any", s)
		}
		p, err := ParsePeer(s)
		if err != nil {
			return nil, err
		}
		add(p)
	}
	return out, nil
}
