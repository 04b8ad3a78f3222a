package filter

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// FailsafeGroup is the Group of a Result accepted by the failsafe (see
// Failsafe), before the ACL and the groups: no group, no rule, no ACL
// entry decided it.
const FailsafeGroup = -2

// Failsafe is an implicit allow evaluated before the ACL and the
// groups: new tcp connections from one of Addrs to one of Ports
// (ingress). fwd fills it with the addresses of the admins seen on its
// control socket and the SSH ports, so that no rule set can lock them
// out (rules file failsafe: {ssh: true}, or fwd --failsafe-ssh).
type Failsafe struct {
	Addrs []netip.Addr
	Ports []uint16
}

// failsafe is the compiled form: sorted, unmapped, small (fwd keeps at
// most a few admins), scanned linearly.
type failsafe struct {
	addrs []netip.Addr
	ports []uint16
}

func (f *failsafe) match(k Key) bool {
	if k.Dir != direction.Ingress || k.Proto != ipproto.TCP {
		return false
	}
	port := false
	for _, p := range f.ports {
		if p == k.Port {
			port = true
			break
		}
	}
	if !port {
		return false
	}
	for _, a := range f.addrs {
		if a == k.Peer {
			return true
		}
	}
	return false
}

// WithFailsafe returns a table that answers as t does, except that the
// failsafe's connections are accepted first (Result.Group
// FailsafeGroup). It shares t's indexes; an empty failsafe returns a
// copy without one. t is not changed.
func (t *Table) WithFailsafe(fs Failsafe) *Table {
	c := *t
	c.failsafe = nil
	if len(fs.Addrs) == 0 || len(fs.Ports) == 0 {
		return &c
	}
	f := &failsafe{}
	for _, a := range fs.Addrs {
		a = a.Unmap().WithZone("")
		if a.IsValid() && !slices.Contains(f.addrs, a) {
			f.addrs = append(f.addrs, a)
		}
	}
	for _, p := range fs.Ports {
		if !slices.Contains(f.ports, p) {
			f.ports = append(f.ports, p)
		}
	}
	slices.SortFunc(f.addrs, netip.Addr.Compare)
	slices.Sort(f.ports)
	c.failsafe = f
	return &c
}

// Failsafe returns the table's failsafe (empty when none).
func (t *Table) Failsafe() Failsafe {
	if t.failsafe == nil {
		return Failsafe{}
	}
	return Failsafe{Addrs: slices.Clone(t.failsafe.addrs), Ports: slices.Clone(t.failsafe.ports)}
}

// IsFailsafe reports whether the failsafe accepted r.
func (r Result) IsFailsafe() bool { return r.Verdict == verdict.Accept && r.Group == FailsafeGroup }

func describeFailsafe(v Result) string {
	return fmt.Sprintf("accepted by the failsafe (%s): new ssh from an admin's address is always admitted", v.Dir.Key())
}
