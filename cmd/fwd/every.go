package main

import (
	"context"
	"sync"
	"time"
)

// everyLoop runs a function every interval on a goroutine of its own,
// until stop (the interface watch, the reconcile loop).
type everyLoop struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// start calls f every interval from now on; f's context ends at stop.
func (l *everyLoop) start(interval time.Duration, f func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.done.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f(ctx)
			}
		}
	})
}

// stop ends the loop and waits for a call in progress; a loop never
// started stops at once.
func (l *everyLoop) stop() {
	if l.cancel != nil {
		l.cancel()
	}
	l.done.Wait()
}
