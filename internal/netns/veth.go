package netns

import (
	"fmt"
	"net/netip"
)

// End is one end of a veth pair.
type End struct {
	NS   string // the namespace it lives in
	Name string // its interface name there, such as "eth0"
	// Addrs are given to it, each with its prefix length (198.18.0.2/24,
	// 2001:db8::2/64); IPv6 ones skip duplicate address detection, so
	// they are usable at once. Test ranges only.
	Addrs []netip.Prefix
}

// check refuses an end with no namespace or name, or an address outside
// the test ranges.
func (e End) check() error {
	if err := checkName(e.NS); err != nil {
		return err
	}
	if e.Name == "" || len(e.Name) > 15 {
		return fmt.Errorf("netns: bad interface name %q", e.Name)
	}
	for _, p := range e.Addrs {
		if !p.IsValid() || !inTestRange(p.Addr()) {
			return fmt.Errorf("netns: address %v of %s in %s: want one in %v or %v", p, e.Name, e.NS, bench4, doc6)
		}
	}
	return nil
}

// AddVeth creates a veth pair from a.NS to b.NS (both exist), gives each
// end its addresses and sets both up. Bad input creates nothing; on a
// later error the pair is removed.
func AddVeth(a, b End) error {
	if err := a.check(); err != nil {
		return err
	}
	if err := b.check(); err != nil {
		return err
	}
	if err := ip("-n", a.NS, "link", "add", a.Name, "type", "veth", "peer", "name", b.Name, "netns", b.NS); err != nil {
		return err
	}
	for _, e := range []End{a, b} {
		if err := e.configure(); err != nil {
			ip("-n", a.NS, "link", "del", a.Name) // takes the peer with it
			return err
		}
	}
	return nil
}

// configure adds the end's addresses and sets it up.
func (e End) configure() error {
	for _, p := range e.Addrs {
		args := []string{"-n", e.NS, "addr", "add", p.String(), "dev", e.Name}
		if p.Addr().Is6() {
			args = append(args, "nodad")
		}
		if err := ip(args...); err != nil {
			return err
		}
	}
	return ip("-n", e.NS, "link", "set", e.Name, "up")
}
