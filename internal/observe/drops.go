package observe

import (
	"github.com/fwd-project/fwd/internal/engine"
)

// Drops keeps the most recent drops the engine logged, newest last; it is
// the engine's DropRecorder. Safe for concurrent use.
type Drops struct {
	r ring[engine.DropEvent]
}

// NewDrops keeps the last n drops.
func NewDrops(n int) *Drops { return &Drops{r: newRing[engine.DropEvent](n)} }

// RecordDrop keeps ev, forgetting the oldest when full.
func (d *Drops) RecordDrop(ev engine.DropEvent) { d.r.add(ev) }

// Recent returns the drops kept, newest first.
func (d *Drops) Recent() []engine.DropEvent { return d.r.newestFirst() }
