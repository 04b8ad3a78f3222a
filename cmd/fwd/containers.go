package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/kernel"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// containerOptions are the container hooks (internal/kernel's
// containers.go): published ports and flows routed to containers obey the
// groups; containers' outbound flows follow the egress rules only when
// asked.
type containerOptions struct {
	on     bool
	egress bool
}

func (c *containerOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.on, "containers", true, "decide new flows to published container ports (Docker, Podman: DNAT in PREROUTING) and to containers' addresses with the ingress rules; false hooks INPUT only, as before")
	fs.BoolVar(&c.egress, "container-egress", false, "with --containers: containers' new outbound flows follow the egress rules too (off: they pass, as Docker lets them)")
}

func (c containerOptions) validate() error {
	if c.egress && !c.on {
		return fmt.Errorf("--container-egress needs --containers")
	}
	return nil
}

// forwardEgressMark is the engine's Config.ForwardEgressMark: the mark
// FWD-FORWARD sets on containers' outbound flows, or 0 when it sets none.
func (c containerOptions) forwardEgressMark() uint32 {
	if !c.egress {
		return 0
	}
	return kernel.DefaultEgressMark
}

// hostNetworkNote is status's note on containers that share the host's
// network: they publish nothing, they listen on local ports.
const hostNetworkNote = "containers run with --network host listen on the host's own ports: fwd decides them as local ports, like any service"

// containerStatus is status's container section: the DNAT rules of both
// families' nat tables, what the rules admit to each, and the paths fwd
// does not decide. Nil when there is nothing to show.
func (d *daemon) containerStatus(t *filter.Table) *control.Containers {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.kmu.Lock()
	kcfg := d.kcfg
	d.kmu.Unlock()
	c := &control.Containers{Hooked: kcfg.Containers}
	for _, fam := range []kernel.Family{kernel.IPv4, kernel.IPv6} {
		saved, err := kernel.ExecRunner{}.Save(ctx, fam)
		if err != nil {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: the nat table could not be read: %v", fam, err))
			continue
		}
		for _, n := range kernel.PublishedPorts(fam, kernel.ParseSave(saved)) {
			c.Published = append(c.Published, publishedPort(t.File(), n))
		}
	}
	if len(c.Published) > 0 && !c.Hooked {
		c.Warnings = append(c.Warnings, "fwd runs with --containers=false: it does not decide the published ports above, the container runtime's rules accept them")
	}
	if len(c.Published) == 0 && len(c.Warnings) == 0 {
		return nil
	}
	if c.Hooked {
		c.Warnings = append(c.Warnings, d.hookDrift(ctx)...)
	}
	c.Notes = []string{hostNetworkNote}
	return c
}

// hookDrift names what differs from the rules fwd installed: a rule ahead
// of fwd's jump (another firewall's accept) decides before fwd until the
// reconcile loop puts fwd first again.
func (d *daemon) hookDrift(ctx context.Context) []string {
	d.kmu.Lock()
	defer d.kmu.Unlock()
	if d.inst == nil {
		return nil
	}
	drift, err := d.inst.Check(ctx, d.kcfg)
	if err != nil {
		return []string{fmt.Sprintf("fwd's rules could not be checked: %v", err)}
	}
	out := make([]string, len(drift))
	for i, l := range drift {
		out[i] = "not as installed, traffic may pass without fwd: " + l
	}
	return out
}

// publishedPort is one DNAT rule and what f's ingress rules say of it.
func publishedPort(f *rules.File, n kernel.DNAT) control.PublishedPort {
	p := control.PublishedPort{Family: n.Family.String(), Proto: n.Proto, Ports: n.Ports, Host: n.Dest, To: n.To, Chain: n.Chain}
	if p.Proto == "" {
		p.Proto = "all"
	}
	if p.Ports == "" {
		p.Ports = "all"
	}
	proto, err := ipproto.Parse(n.Proto)
	if err != nil || n.Proto == "" {
		proto = ipproto.Proto(6) // a DNAT of every protocol: tcp stands for it
	}
	ranges := n.PortRanges()
	if ranges == nil {
		ranges = [][2]uint16{{0, 0xffff}}
	}
	open, partly, some := true, false, []string(nil)
	for _, r := range ranges {
		a := lifecycle.Admits(f, proto, r[0], r[1], n.Family == kernel.IPv6)
		open = open && a.Any
		partly = partly || a.Partly || a.Any || len(a.Peers) > 0
		for _, peer := range a.Peers {
			if !slices.Contains(some, peer) {
				some = append(some, peer)
			}
		}
	}
	switch {
	case open:
		p.Admitted = "any"
	case len(some) > 0 && len(ranges) == 1:
		p.Admitted, p.From = "some", some
	case partly:
		p.Admitted, p.From = "partly", some
	default:
		p.Admitted = "none"
	}
	return p
}
