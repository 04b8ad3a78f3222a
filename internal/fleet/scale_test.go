package fleet

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"encoding/json"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
	"github.com/fwd-project/fwd/internal/rules"
)

// The scale test's size: a short form by default, the full 1,000 hosts
// under make bench-fleet.
var (
	scaleHosts = flag.Int("fleet.hosts", 50, "TestFleetScale: simulated hosts")
	scaleEdits = flag.Int("fleet.edits", 5, "TestFleetScale: measured edits")
)

// scaleGroups is the benchmark's policy: web open to the world, db and
// cache open to web's members (and cache to db's), ops to itself.
func scaleGroups(editPort int) map[string]string {
	return map[string]string{
		"web":   fmt.Sprintf("name: web\ningress:\n  - proto: tcp\n    ports: [80, 443, %d]\n    from: [0.0.0.0/0, '::/0']\n", editPort),
		"db":    "name: db\ningress:\n  - proto: tcp\n    ports: [5432]\n    from: [group:web]\n",
		"cache": "name: cache\ningress:\n  - proto: tcp\n    ports: [6379]\n    from: [group:web, group:db]\n",
		"ops":   "name: ops\ningress:\n  - proto: tcp\n    ports: [22]\n    from: [group:ops, 198.18.255.0/24]\n",
	}
}

// scaleAssign gives host i its groups: every host is in ops, and in one
// of web (half), db or cache.
func scaleAssign(i int) []string {
	switch i % 4 {
	case 0, 1:
		return []string{"ops", "web"}
	case 2:
		return []string{"db", "ops"}
	default:
		return []string{"cache", "ops"}
	}
}

func scaleAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(1 + i/250), byte(1 + i%250)})
}

// simHost is one simulated host: its own client, member and syncer, as
// fwd runs them, recording when it reached each revision.
type simHost struct {
	name   string
	s      *Syncer
	member *Member
	mu     sync.Mutex
	seen   []reached
	got    []reached // watch responses received
}

type reached struct {
	rev int64
	at  time.Time
}

// reachedAt is when the host first enforced a revision >= rev.
func (h *simHost) reachedAt(rev int64) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return first(h.seen, rev)
}

// receivedAt is when the host first received a revision >= rev.
func (h *simHost) receivedAt(rev int64) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return first(h.got, rev)
}

func first(rs []reached, rev int64) (time.Time, bool) {
	for _, r := range rs {
		if r.rev >= rev {
			return r.at, true
		}
	}
	return time.Time{}, false
}

// TestFleetScale runs many simulated hosts against one etcd and makes
// edits to the policy: every host must put each edit in force, and its
// table's hash must equal the reference resolver's for that host. It
// reports the slowest host's time to enforce each edit (p50, p99 over
// the edits) and the memory per host; make bench-fleet runs 1,000 hosts.
func TestFleetScale(t *testing.T) {
	n, edits := *scaleHosts, *scaleEdits
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	var kvs []string
	for g, v := range scaleGroups(8000) {
		kvs = append(kvs, gkey(g), v)
	}
	put(t, admin, kvs...)
	for i := 0; i < n; i += 50 {
		var as []string
		for j := i; j < min(i+50, n); j++ {
			as = append(as, akey(hostName(j)), assign(scaleAssign(j)...))
		}
		put(t, admin, as...)
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// The hosts come up as a fleet does: all present first (their
	// clients, leases and keys), then their syncers read the store.
	start := time.Now()
	hosts, startSyncers, stop := startSimHosts(t, srv, n)
	defer stop()
	waitCount(t, admin, testLayout.Dir(KindHost), n)
	registered := time.Since(start)
	start = time.Now()
	startSyncers()
	waitAll(t, hosts, put(t, admin, gkey("web"), scaleGroups(7999)["web"]), "the warm-up edit")
	synced := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perHost := float64(after.HeapInuse-before.HeapInuse) / float64(n)

	var slowest, delivered, own []time.Duration
	for e := range edits {
		t0 := time.Now()
		rev := put(t, admin, gkey("web"), scaleGroups(8001 + e)["web"])
		var worst, worstRecv time.Duration
		for i, at := range waitAll(t, hosts, rev, fmt.Sprintf("edit %d", e)) {
			worst = max(worst, at.Sub(t0))
			if recv, ok := hosts[i].receivedAt(rev); ok {
				worstRecv = max(worstRecv, recv.Sub(t0))
				own = append(own, at.Sub(recv))
			}
		}
		slowest = append(slowest, worst)
		delivered = append(delivered, worstRecv)
		checkHashes(t, admin, hosts, rev)
	}
	slices.Sort(slowest)
	slices.Sort(delivered)
	slices.Sort(own)
	t.Logf("fleet scale: %d hosts registered in %v, all synced and the warm-up edit enforced in %v; %.0f KiB heap per host (client, lease, watches, copy, table); %d goroutines",
		n, registered.Round(time.Millisecond), synced.Round(time.Millisecond), perHost/1024, runtime.NumGoroutine())
	t.Logf("fleet scale: slowest host's time to enforce one edit over %d edits: p50 %v, p99 %v, min %v, max %v",
		edits, pct(slowest, 50), pct(slowest, 99), slowest[0], slowest[len(slowest)-1])
	t.Logf("fleet scale: in the same run, the edit's watch event reaching the slowest host (no build): p50 %v, p99 %v; enforce/deliver at p50 %.1fx",
		pct(delivered, 50), pct(delivered, 99), float64(pct(slowest, 50))/float64(max(pct(delivered, 50), time.Millisecond)))
	t.Logf("fleet scale: per host, from receiving the edit to enforcing it (the 20 ms quiet period, the build, waiting for a CPU): p50 %v, p99 %v over %d host-edits",
		pct(own, 50), pct(own, 99), len(own))
}

func hostName(i int) string { return fmt.Sprintf("host-%04d", i) }

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)].Round(time.Millisecond)
}

// startSimHosts starts n hosts' members, each with its own client;
// the returned func starts their syncers.
func startSimHosts(t *testing.T, srv *etcdtest.Server, n int) ([]*simHost, func(), func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	hosts := make([]*simHost, n)
	for i := range n {
		c := newClient(t, srv.Endpoints())
		h := &simHost{name: hostName(i)}
		m, err := NewMember(MemberConfig{Client: c, Layout: testLayout, Host: h.name,
			Addrs: []netip.Addr{scaleAddr(i)}, TTL: 20 * time.Second, StatusJitter: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		h.member = m
		h.s = NewSyncer(SyncConfig{Client: c, Layout: testLayout, Host: h.name,
			CheckEvery: 10 * time.Minute,
			Received: func(rev int64) {
				h.mu.Lock()
				h.got = append(h.got, reached{rev, time.Now()})
				h.mu.Unlock()
			},
			Apply: func(*Snapshot) error { return nil },
			Report: func(v StatusValue) {
				h.mu.Lock()
				h.seen = append(h.seen, reached{v.Revision, time.Now()})
				h.mu.Unlock()
				m.SetStatus(v)
			}})
		hosts[i] = h
		wg.Add(1)
		go func() { defer wg.Done(); _ = m.Run(ctx) }()
	}
	startSyncers := func() {
		for _, h := range hosts {
			wg.Add(1)
			go func() { defer wg.Done(); _ = h.s.Run(ctx) }()
		}
	}
	return hosts, startSyncers, func() {
		cancel()
		wg.Wait()
	}
}

// waitAll waits until every host reached rev and returns when each did.
func waitAll(t *testing.T, hosts []*simHost, rev int64, what string) []time.Time {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	out := make([]time.Time, len(hosts))
	for i, h := range hosts {
		for {
			at, ok := h.reachedAt(rev)
			if ok {
				out[i] = at
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: host %s never reached revision %d: status %+v", what, h.name, rev, h.s.Status())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return out
}

// waitCount waits until n keys exist under dir.
func waitCount(t *testing.T, c *clientv3.Client, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := c.Get(context.Background(), dir, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && resp.Count == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %v keys, want %d (err %v)", dir, resp, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkHashes compares every host's hash with the reference resolver's
// for that host at rev: the store read whole at rev, membership taken
// from its assign/ and hosts/ keys, Resolve, Hash.
func checkHashes(t *testing.T, c *clientv3.Client, hosts []*simHost, rev int64) {
	t.Helper()
	resp, err := c.Get(context.Background(), testLayout.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{Groups: map[string][]byte{}, PrefixLists: map[string][]byte{}}
	assigned := map[string][]string{}
	alive := map[string][]netip.Addr{}
	for _, kv := range resp.Kvs {
		k, name := testLayout.Parse(string(kv.Key))
		switch k {
		case KindGroup:
			p.Groups[name] = kv.Value
		case KindAssign:
			var gs []string
			if err := json.Unmarshal(kv.Value, &gs); err != nil {
				t.Fatal(err)
			}
			assigned[name] = gs
		case KindHost:
			var hv HostValue
			if err := json.Unmarshal(kv.Value, &hv); err != nil {
				t.Fatal(err)
			}
			alive[name] = hv.Addrs
		}
	}
	members := map[string][]netip.Prefix{}
	for _, h := range slices.Sorted(maps.Keys(alive)) {
		for _, g := range assigned[h] {
			for _, a := range alive[h] {
				members[g] = append(members[g], netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	bad := 0
	for _, h := range hosts {
		ref, err := Resolve(p, assigned[h.name], members, rules.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := h.s.Status().Hash; got != ref.Hash {
			bad++
			if bad <= 3 {
				t.Errorf("host %s enforces hash %.12s, the reference resolver says %.12s", h.name, got, ref.Hash)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d hosts differ from the reference at revision %d", bad, len(hosts), rev)
	}
}
