package engine

import (
	"slices"

	"github.com/fwd-project/fwd/internal/filter"
)

// SetLinks tells the engine the host's interfaces (index and name), so
// that groups attached to interfaces decide the packets of the
// interfaces they name: the live table is bound to them now, and every
// table swapped in later is bound before it goes live. Call it whenever
// the interfaces change; an interface that appears is covered from then
// on, without a reload. It reports whether links differ from the last
// ones.
func (e *Engine) SetLinks(links []filter.Link) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if slices.Equal(links, e.links) && e.links != nil {
		return false
	}
	e.links = slices.Clone(links)
	if l := e.live.Load(); l != nil {
		l.t.Bind(e.links)
	}
	return true
}
