package fleet

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
)

// BenchmarkEdit: one rule added to group web and deleted again (two
// edits by compare-and-swap, the group's size constant), by one admin,
// and by 20 admins at once on the one group (each lost race is made
// again; retries/op says how many). ns/op is the wall time per op over
// all admins.
func BenchmarkEdit(b *testing.B) {
	for _, bc := range []struct {
		name   string
		admins int
	}{{"one admin", 1}, {"20 admins one group", 20}} {
		b.Run(bc.name, func(b *testing.B) {
			cli := etcdtest.Start(b).Client(b)
			a := NewAdmin(cli, Layout{Prefix: DefaultPrefix}, AdminOptions{Retries: 1000})
			if _, err := a.Apply(context.Background(), "p.yaml", []byte(basePolicy), ApplyOptions{}); err != nil {
				b.Fatal(err)
			}
			var next, port, retries atomic.Int64
			port.Store(1024)
			var wg sync.WaitGroup
			b.ResetTimer()
			for range bc.admins {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						r := []DirRule{tcpRule(int(port.Add(1)), "any")}
						res, err := a.AddRule(context.Background(), "web", r, false)
						if err != nil {
							b.Error(err)
							return
						}
						res2, err := a.DeleteRule(context.Background(), "web", r, false)
						if err != nil {
							b.Error(err)
							return
						}
						retries.Add(int64(res.Retries + res2.Retries))
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(retries.Load())/float64(b.N), "retries/op")
		})
	}
}
