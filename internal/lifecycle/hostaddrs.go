package lifecycle

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
)

// HostAddrs lists the addresses of this network namespace's interfaces
// that a peer can reach it from (not loopback, link-local, unspecified or
// multicast), sorted: what a group reference resolves to in single-host
// mode and what a fleet host publishes as its own (fwd --fleet-addr
// aside).
func HostAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() || slices.Contains(out, ip) {
			continue
		}
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// resolveSingleHost resolves f's group references as a single host does:
// every group of a single-host file is this host's, so each reference
// stands for the host's own addresses. A file already resolved (fleet
// mode resolves from the group's members) is left as it is. Each referenced group gets one
// warning at its first reference, saying so; f's warnings grow (once).
func resolveSingleHost(f *rules.File, addrs func() ([]netip.Addr, error)) (*rules.File, error) {
	if f.GroupsResolved || !f.HasGroupRefs() { // fleet mode resolves before
		return f, nil
	}
	own, err := addrs()
	if err != nil {
		return nil, err
	}
	words := make([]string, len(own))
	for i, a := range own {
		words[i] = a.String()
	}
	said := map[string]bool{}
	for _, w := range f.Warnings {
		said[w.Msg] = true
	}
	for _, ref := range firstRefs(f) {
		msg := fmt.Sprintf("group:%s stands for this host's own addresses (%s) in single-host mode; under fwd --store it stands for the group's live members",
			ref.name, orNone(strings.Join(words, ", ")))
		if !said[msg] {
			f.Warnings = append(f.Warnings, &rules.Error{File: f.Path, Pos: ref.pos, Msg: msg})
			said[msg] = true
		}
	}
	prefixes := rules.HostPrefixes(own)
	return f.ResolveGroups(func(string) []netip.Prefix { return prefixes }), nil
}

type refAt struct {
	name string
	pos  rules.Pos
}

// firstRefs lists each referenced group once, with its first rule's place.
func firstRefs(f *rules.File) []refAt {
	var out []refAt
	for gi := range f.Groups {
		g := &f.Groups[gi]
		for _, rs := range [][]rules.Rule{g.Ingress, g.Egress} {
			for ri := range rs {
				for _, name := range rs[ri].GroupRefs {
					if !slices.ContainsFunc(out, func(r refAt) bool { return r.name == name }) {
						out = append(out, refAt{name, rs[ri].Pos})
					}
				}
			}
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none now"
	}
	return s
}
