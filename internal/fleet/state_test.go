package fleet

import (
	"context"
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
)

func evPut(key string, rev int64) *clientv3.Event {
	return &clientv3.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: []byte(`["web"]`), ModRevision: rev}}
}

func evDel(key string, rev int64) *clientv3.Event {
	return &clientv3.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}}
}

// TestStateAppliesEventsOnce: responses delivered again (etcd 3.4.23
// sends duplicates) change nothing: a key deleted stays deleted when its
// older put comes again.
func TestStateAppliesEventsOnce(t *testing.T) {
	a, b := akey("a"), akey("b")
	tests := []struct {
		name      string
		responses [][]*clientv3.Event
		want      map[string]int64
		skipped   int
	}{
		{"in order", [][]*clientv3.Event{{evPut(a, 5)}, {evPut(b, 6), evDel(a, 6)}}, map[string]int64{b: 6}, 0},
		{"response twice", [][]*clientv3.Event{{evPut(a, 5)}, {evPut(a, 5)}}, map[string]int64{a: 5}, 1},
		{"put again after its delete", [][]*clientv3.Event{{evPut(a, 5)}, {evDel(a, 7)}, {evPut(a, 5)}}, map[string]int64{}, 1},
		{"transaction again", [][]*clientv3.Event{{evPut(a, 5), evPut(b, 5)}, {evPut(a, 5), evPut(b, 5)}, {evDel(b, 8)}}, map[string]int64{a: 5}, 2},
		{"delete of an unknown key", [][]*clientv3.Event{{evDel(a, 3)}}, map[string]int64{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState(testLayout)
			skipped := 0
			for _, r := range tt.responses {
				skipped += st.applyEvents(r)
			}
			if !mapsEqual(st.mods, tt.want) || skipped != tt.skipped {
				t.Fatalf("keys %v, skipped %d; want %v, skipped %d", st.mods, skipped, tt.want, tt.skipped)
			}
			if _, ok := st.assign["a"]; ok != (tt.want[a] != 0) {
				t.Fatalf("assign[a] present %v, want %v", ok, tt.want[a] != 0)
			}
		})
	}
}

// TestSyncCheckFindsLostEvent: the keys-only check passes on a faithful
// copy and asks for a full read when the copy lost a put, a delete or
// an update.
func TestSyncCheckFindsLostEvent(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	put(t, c, gkey("web"), group("web", "80", "0.0.0.0/0"), akey("h1"), assign("web"), akey("h2"), assign("web"))
	tests := []struct {
		name string
		lose func(st *state)
	}{
		{"faithful", func(*state) {}},
		{"lost put", func(st *state) { st.del(akey("h2")) }},
		{"lost delete", func(st *state) { st.put(akey("h3"), []byte(`[]`), st.rev) }},
		{"lost update", func(st *state) { st.mods[gkey("web")]-- }},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSyncer(SyncConfig{Client: c, Layout: testLayout, Host: "h1", Log: testLog(t), PageSize: 2})
			st, err := s.readAll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s.st = st
			tt.lose(st)
			err = s.check(ctx)
			if faithful := tt.name == "faithful"; faithful != (err == nil) || (!faithful && !errors.Is(err, errResync)) {
				t.Fatalf("check: %v", err)
			}
		})
	}
}
