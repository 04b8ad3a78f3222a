package fleet

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
)

func startMember(t *testing.T, c *clientv3.Client, host, leasePath string) (*Member, func()) {
	t.Helper()
	m, err := NewMember(MemberConfig{Client: c, Layout: testLayout, Host: host,
		Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.1")}, TTL: 2 * time.Second, AllowShortTTL: true,
		LeasePath: leasePath, Retry: 10 * time.Millisecond, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return m, stop
}

// waitKey polls key until ok holds for its value and lease (nil: absent).
func waitKey(t *testing.T, c *clientv3.Client, key, what string, ok func(v []byte, lease int64) bool) (v []byte, lease int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(context.Background(), key)
		if err == nil {
			v, lease = nil, 0
			if len(resp.Kvs) == 1 {
				v, lease = resp.Kvs[0].Value, resp.Kvs[0].Lease
			}
			if ok(v, lease) {
				return v, lease
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %s: value %q lease %x", key, what, v, lease)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMemberKeepsItsKeys: the host's keys are written under its lease,
// written again when deleted, under a new lease when the lease is lost,
// and its status follows SetStatus.
func TestMemberKeepsItsKeys(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	m, _ := startMember(t, c, "h1", "")
	v, lease := waitKey(t, c, hkey("h1"), "written", func(v []byte, l int64) bool { return v != nil })
	var hv HostValue
	if err := json.Unmarshal(v, &hv); err != nil || len(hv.Addrs) != 1 || lease != int64(m.Lease()) {
		t.Fatalf("hosts/h1 = %s (lease %x), want one address under lease %x", v, lease, m.Lease())
	}
	if _, err := c.Delete(context.Background(), hkey("h1")); err != nil {
		t.Fatal(err)
	}
	waitKey(t, c, hkey("h1"), "rewritten after its delete", func(v []byte, l int64) bool { return v != nil && l == lease })
	if _, err := c.Delete(context.Background(), skey("h1")); err != nil {
		t.Fatal(err)
	}
	waitKey(t, c, skey("h1"), "rewritten after its delete", func(v []byte, l int64) bool { return v != nil && l == lease })
	if _, err := c.Revoke(context.Background(), clientv3.LeaseID(lease)); err != nil {
		t.Fatal(err)
	}
	_, lease2 := waitKey(t, c, hkey("h1"), "under a new lease", func(v []byte, l int64) bool { return v != nil && l != lease && l != 0 })
	m.SetStatus(StatusValue{Revision: 42, Hash: "abc"})
	waitKey(t, c, skey("h1"), "at revision 42", func(v []byte, l int64) bool {
		var sv StatusValue
		return json.Unmarshal(v, &sv) == nil && sv.Revision == 42 && l == lease2
	})
}

// TestMemberResumesLeaseAndExpires: a restarted member resumes the lease
// kept on disk (its keys never vanish); a member that stays stopped
// leaves the fleet when its lease expires.
func TestMemberResumesLeaseAndExpires(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	path := t.TempDir() + "/" + LeaseFile
	m1, stop1 := startMember(t, c, "h1", path)
	_, lease := waitKey(t, c, hkey("h1"), "written", func(v []byte, l int64) bool { return v != nil })
	stop1()
	if lease != int64(m1.Lease()) {
		t.Fatalf("lease %x, member says %x", lease, m1.Lease())
	}
	m2, stop2 := startMember(t, c, "h1", path)
	waitKey(t, c, hkey("h1"), "written by the restarted member", func(v []byte, l int64) bool { return m2.Writes() > 0 })
	if m2.Lease() != m1.Lease() {
		t.Fatalf("restarted member took lease %x, want the kept %x", m2.Lease(), m1.Lease())
	}
	stop2()
	waitKey(t, c, hkey("h1"), "gone after its lease expired", func(v []byte, l int64) bool { return v == nil })
}
