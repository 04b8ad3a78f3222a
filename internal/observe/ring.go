package observe

import "sync"

// ring keeps the last cap values added, for the status page's lists and
// chart. Safe for concurrent use.
type ring[T any] struct {
	mu   sync.Mutex
	buf  []T // a ring of cap(buf)
	next int // where the next value goes once full
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, 0, n)} }

// add keeps v, forgetting the oldest when full.
func (r *ring[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
}

// oldestFirst returns a copy of the values kept, oldest first.
func (r *ring[T]) oldestFirst() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]T, 0, len(r.buf))
	for i := range r.buf {
		out = append(out, r.buf[(r.next+i)%len(r.buf)])
	}
	return out
}

// newestFirst returns a copy of the values kept, newest first.
func (r *ring[T]) newestFirst() []T {
	out := r.oldestFirst()
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
