package main

import (
	"context"
	"time"
)

// expiry recompiles the live rules when an ACL entry of the live table
// expires (filter.Table.NextExpiry), through the lifecycle's Recompile:
// the file is unchanged, so a reload would be a no-op, but the new
// table leaves the expired entry out. Every change of the live table
// wakes it to look at the new table's next expiry.
type expiry struct {
	wake chan struct{} // capacity 1: a change happened
	stop chan struct{}
	done chan struct{}
}

// retryExpiry is how long the loop waits after a failed recompile.
const retryExpiry = 10 * time.Second

func (d *daemon) startExpiry() {
	x := &expiry{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	d.exp.Store(x)
	go func() {
		defer close(x.done)
		for {
			var fire <-chan time.Time
			var timer *time.Timer
			if t := d.eng.Table(); t != nil && !t.NextExpiry().IsZero() {
				timer = time.NewTimer(time.Until(t.NextExpiry()))
				fire = timer.C
			}
			select {
			case <-x.stop:
				stopTimer(timer)
				return
			case <-x.wake:
				stopTimer(timer)
			case <-fire:
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				_, err := d.svc.Recompile(ctx) // logs what it did
				cancel()
				if err != nil {
					select {
					case <-x.stop:
						return
					case <-time.After(retryExpiry):
					}
				}
			}
		}
	}()
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// wakeExpiry tells the loop the live table changed.
func (d *daemon) wakeExpiry() {
	if x := d.exp.Load(); x != nil {
		select {
		case x.wake <- struct{}{}:
		default:
		}
	}
}

func (d *daemon) stopExpiry() {
	if x := d.exp.Swap(nil); x != nil {
		close(x.stop)
		<-x.done
	}
}
