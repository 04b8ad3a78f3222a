package observe

import (
	"sync"

	"github.com/fwd-project/fwd/internal/engine"
)

// Drops keeps the most recent drops the engine logged, newest last; it is
// the engine's DropRecorder. Safe for concurrent use.
type Drops struct {
	mu   sync.Mutex
	buf  []engine.DropEvent // a ring of cap(buf)
	next int                // where the next one goes once full
}

// NewDrops keeps the last n drops.
func NewDrops(n int) *Drops {
	return &Drops{buf: make([]engine.DropEvent, 0, n)}
}

// RecordDrop keeps ev, forgetting the oldest when full.
func (d *Drops) RecordDrop(ev engine.DropEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.buf) < cap(d.buf) {
		d.buf = append(d.buf, ev)
		return
	}
	d.buf[d.next] = ev
	d.next = (d.next + 1) % len(d.buf)
}

// Recent returns the drops kept, newest first.
func (d *Drops) Recent() []engine.DropEvent {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]engine.DropEvent, 0, len(d.buf))
	for i := range d.buf {
		out = append(out, d.buf[(d.next+len(d.buf)-1-i)%len(d.buf)])
	}
	return out
}
