package main

import (
	"context"
	"net"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lifecycle"
)

// linkEvery is how often fwd looks at the host's interfaces: an
// interface that appears is covered by the groups attached to it at
// most this long after.
const linkEvery = time.Second

// hostLinks lists the host's interfaces.
func hostLinks() ([]filter.Link, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]filter.Link, len(ifs))
	for i, f := range ifs {
		out[i] = filter.Link{Index: uint32(f.Index), Name: f.Name}
	}
	return out, nil
}

// startLinks resolves the interface names of groups to indexes now and
// then every linkEvery, and says once per table which interface
// patterns match no interface (a warning: the group applies when one
// appears).
func (d *daemon) startLinks() {
	warned := d.linksOnce(nil)
	d.links.start(linkEvery, func(context.Context) { warned = d.linksOnce(warned) })
}

// linksOnce updates the engine's interfaces, and warns about the
// patterns of the live table unless it is warned (already warned about).
// It returns the live table.
func (d *daemon) linksOnce(warned *filter.Table) *filter.Table {
	links, err := hostLinks()
	if err != nil {
		d.log.Warn("cannot list interfaces", "err", err)
		return warned
	}
	if d.eng.SetLinks(links) {
		d.log.Debug("interfaces", "count", len(links))
	}
	t := d.eng.Table()
	if t == nil || t == warned || !t.HasInterfaces() {
		return t
	}
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.Name
	}
	f := *t.File()
	f.Warnings = f.UnmatchedInterfaces(names)
	for _, w := range lifecycle.Warnings(&f) {
		d.log.Warn("rules file", "warning", w)
	}
	return t
}

// stopLinks stops the loop.
func (d *daemon) stopLinks() { d.links.stop() }
