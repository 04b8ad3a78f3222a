package main

import (
	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/filter"
)

// fakeLimits reports the rules of t with a limit as a daemon would,
// with fixed counts: the first has limited 5 flows of two peers.
func fakeLimits(t *filter.Table) ([]control.LimitInfo, *control.LimitTable) {
	var out []control.LimitInfo
	f := t.File()
	for gi := range f.Groups {
		for _, r := range f.Groups[gi].Ingress {
			if r.Limit == nil {
				continue
			}
			li := control.LimitInfo{ID: r.ID, Conns: r.Limit.Conns, Per: "30s"}
			if len(out) == 0 {
				li.Limited, li.Over, li.Peers = 5, 2, []string{"198.18.0.7", "2001:db8:1:2::"}
			}
			out = append(out, li)
		}
	}
	return out, &control.LimitTable{Entries: 65536, InUse: 3}
}
