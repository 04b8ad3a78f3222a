package etcdtest

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestServer puts a key, restarts the server on the same data, reads the
// key back, then compacts and proves a watch from before the compaction
// is refused.
func TestServer(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put, err := c.Put(ctx, "/k", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "/k", "v2"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Start()
	got, err := c.Get(ctx, "/k")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v2" {
		t.Fatalf("after restart /k = %v, want v2", got.Kvs)
	}
	s.Compact(t, got.Header.Revision)
	w := c.Watch(ctx, "/k", clientv3.WithRev(put.Header.Revision))
	resp := <-w
	if resp.Err() != rpctypes.ErrCompacted {
		t.Fatalf("watch from a compacted revision: err %v, want ErrCompacted", resp.Err())
	}
}
