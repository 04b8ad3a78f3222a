package main

import (
	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
)

// limits is the control server's Limits: the engine's limit status in
// the API's shapes; nil when no rule has a limit and none ever had.
func (d *daemon) limits(t *filter.Table) ([]control.LimitInfo, *control.LimitTable) {
	rl, st := d.eng.LimitStatus(t)
	if len(rl) == 0 && st.Entries == 0 {
		return nil, nil
	}
	out := make([]control.LimitInfo, len(rl))
	for i, r := range rl {
		out[i] = control.LimitInfo{ID: r.ID, Conns: r.Conns, Per: rules.FormatLimitPer(r.Per), Limited: r.Limited, Over: r.Over}
		for _, p := range r.Peers {
			out[i].Peers = append(out[i].Peers, p.String())
		}
	}
	return out, &control.LimitTable{Entries: st.Entries, InUse: st.InUse, Evictions: st.Evictions}
}
