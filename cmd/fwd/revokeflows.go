package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/fwd-project/fwd/internal/conntrack"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/kernel"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// cutFlows is the lifecycle's CutFlows hook (fwctl delete --revoke,
// fwctl reload --revoke): once the new table is live it dumps the
// kernel's conntrack entries and deletes those of the connections the
// table no longer allows (package conntrack, through ctnetlink). The
// connmark that let a one-way flow by fwd's queue lives on the entry
// and goes with it; the connection's next packet is judged as a new
// one, and dropped.
func (d *daemon) cutFlows(ctx context.Context, live *filter.Table) (int, error) {
	h, err := d.hostView()
	if err != nil {
		return 0, err
	}
	return deleteFlows(func(fl conntrack.Flow) bool { return !keepFlow(live, fl, h) })
}

// hostView reads what keepFlow needs of the host: its addresses, its
// interfaces and whether fwd decides outbound connections.
func (d *daemon) hostView() (hostView, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return hostView{}, fmt.Errorf("revoke: the host's interfaces: %w", err)
	}
	h := hostView{addrs: map[netip.Addr]bool{}}
	for _, ifc := range ifs {
		h.ifindexes = append(h.ifindexes, uint32(ifc.Index))
		as, err := ifc.Addrs()
		if err != nil {
			return hostView{}, fmt.Errorf("revoke: the addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				h.addrs[p.Addr().Unmap()] = true
			}
		}
	}
	d.kmu.Lock()
	h.egress = d.inst != nil && d.kcfg.Egress
	d.kmu.Unlock()
	return h, nil
}

// hostView is what the revoke decision knows of the host.
type hostView struct {
	addrs map[netip.Addr]bool // the host's addresses
	// egress is whether outbound connections are queued to fwd (some
	// rule restricts egress); when not, the host may open anything.
	egress bool
	// ifindexes are the host's interfaces: a table with groups per
	// interface is asked on each (conntrack does not keep a flow's
	// interface), and the flow is kept when one allows it.
	ifindexes []uint32
}

// keepFlow reports whether the conntrack flow fl may go on under t: fwd
// does not decide it (loopback, the host to itself, a flow through the
// host, an outbound one while egress is not hooked), the kernel admits
// it before fwd's queue (kernel.Admits), or t accepts it as a new
// connection in its original direction: to a host address, ingress from
// its source; from one, egress to its destination. An ACL deny that
// matches it cuts it, as it would refuse it.
func keepFlow(t *filter.Table, fl conntrack.Flow, h hostView) bool {
	src, dst := fl.Src.Unmap(), fl.Dst.Unmap()
	if src.IsLoopback() || dst.IsLoopback() {
		return true
	}
	toHost, fromHost := h.addrs[dst], h.addrs[src]
	var k filter.Key
	switch {
	case toHost && fromHost: // over lo
		return true
	case toHost:
		k = flowKey(fl, direction.Ingress)
	case fromHost && h.egress:
		k = flowKey(fl, direction.Egress)
	default: // through the host, or out while egress is open
		return true
	}
	if kernel.Admits(k.Peer, k.Proto, fl.ICMPType) != kernel.AdmitNone {
		return true
	}
	if !t.HasInterfaces() {
		return t.Match(k).Accepted()
	}
	if t.Match(k).Accepted() { // an interface no group names
		return true
	}
	for _, ix := range h.ifindexes {
		k.Ifindex = ix
		if t.Match(k).Accepted() {
			return true
		}
	}
	return false
}
