package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fwd-project/fwd/internal/fleet"
	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
	"github.com/fwd-project/fwd/internal/netns"
)

// fleetTTL is the hosts' lease in these tests (a test build allows less
// than 15 s).
const fleetTTL = 2 * time.Second

// fleetEnv is three hosts, each in its namespace on one bridge, each
// running fwd in fleet mode against one etcd reached over a unix socket
// (the namespaces have no route to each other's loopback, nor out).
type fleetEnv struct {
	t     *testing.T
	e     *env
	etcd  *etcdtest.Server
	admin *clientv3.Client
	ns    []string
	addrs []string
	fwds  []*fwd
}

func newFleetEnv(t *testing.T, n int) *fleetEnv {
	requireRoot(t)
	bin := fwdTestBin(t)
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	fe := &fleetEnv{t: t, e: &env{t: t, dir: t.TempDir(), bin: bin}}
	fe.etcd = etcdtest.Start(t)
	fe.admin = fe.etcd.Client(t)
	hub := "fwdfh-" + id
	if err := netns.Add(hub); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNetns(hub) })
	mustRun(t, "ip", "-n", hub, "link", "add", "br0", "type", "bridge")
	mustRun(t, "ip", "-n", hub, "link", "set", "br0", "up")
	for i := range n {
		ns := fmt.Sprintf("fwdf%d-%s", i+1, id)
		if err := netns.Add(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deleteNetns(ns) })
		addr := fmt.Sprintf("198.18.7.%d", i+1)
		port := fmt.Sprintf("v%d", i+1)
		if err := netns.AddVeth(
			netns.End{NS: ns, Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix(addr + "/24")}},
			netns.End{NS: hub, Name: port},
		); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "ip", "-n", hub, "link", "set", port, "master", "br0")
		for _, p := range []string{":8080", ":9090"} {
			echoServe(listenIn(t, ns, "tcp", p))
		}
		fe.ns, fe.addrs = append(fe.ns, ns), append(fe.addrs, addr)
	}
	return fe
}

func hostName(i int) string { return "h" + strconv.Itoa(i+1) }

// start runs fwd on host i and waits until it enforces a snapshot.
func (fe *fleetEnv) start(i int) *fwd {
	fe.t.Helper()
	dir := fe.e.dir
	f := fe.e.launchFwdIn(fe.ns[i], "--store", fe.etcd.Endpoints()[0], "--host-name", hostName(i),
		"--fleet-addr", fe.addrs[i], "--state-dir", filepath.Join(dir, hostName(i)),
		"--socket", filepath.Join(dir, hostName(i)+".sock"),
		"--store-lease-ttl", fleetTTL.String(), "--test-short-lease", "--queues", "1")
	f.waitLog(0, "fleet snapshot at revision")
	for len(fe.fwds) <= i {
		fe.fwds = append(fe.fwds, nil)
	}
	fe.fwds[i] = f
	return f
}

// txn writes key, value pairs ("" deletes) in one transaction.
func (fe *fleetEnv) txn(kvs ...string) int64 {
	fe.t.Helper()
	var ops []clientv3.Op
	for i := 0; i < len(kvs); i += 2 {
		if kvs[i+1] == "" {
			ops = append(ops, clientv3.OpDelete("/fwd/"+kvs[i]))
		} else {
			ops = append(ops, clientv3.OpPut("/fwd/"+kvs[i], kvs[i+1]))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := fe.admin.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		fe.t.Fatal(err)
	}
	return resp.Header.Revision
}

// connects reports whether host from opens a TCP connection to host to's
// port within a second.
func (fe *fleetEnv) connects(from, to, port int) bool {
	c, err := dialIn(fe.ns[from], "tcp", "", net.JoinHostPort(fe.addrs[to], strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// eventually waits until connects(from, to, port) is want, for 20 s.
func (fe *fleetEnv) eventually(from, to, port int, want bool) time.Duration {
	fe.t.Helper()
	start := time.Now()
	for time.Since(start) < 20*time.Second {
		if fe.connects(from, to, port) == want {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fe.t.Fatalf("%s -> %s:%d: connects=%v never came", hostName(from), hostName(to), port, want)
	return 0
}

// all runs the checks at once (a drop takes its second).
func all(checks ...func()) {
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func() { defer wg.Done(); c() }()
	}
	wg.Wait()
}

func appGroup(name string, port int) string {
	return fmt.Sprintf("name: %s\ningress:\n  - proto: tcp\n    ports: [%d]\n    from: [group:%s]\n", name, port, name)
}

// base lets every host out (egress omitted) and in to nothing.
const baseGroup = "name: base\ningress: []\n"

// TestFleetThreeHosts: three fwd hosts share one etcd. An edit and a
// membership change take effect on every host; moving the group to a
// new one in one transaction drops no connection; a killed host's
// address leaves its peers' tables within its lease's TTL; a host
// restarted while the store is down enforces its saved snapshot.
func TestFleetThreeHosts(t *testing.T) {
	fe := newFleetEnv(t, 3)
	fe.txn("policy/groups/base", baseGroup, "policy/groups/app", appGroup("app", 8080),
		"assign/h1", `["base","app"]`, "assign/h2", `["base","app"]`, "assign/h3", `["base"]`)
	for i := range 3 {
		fe.start(i)
	}
	// h1 and h2 are app's members; h3 is not.
	all(func() { fe.eventually(1, 0, 8080, true) }, func() { fe.eventually(0, 1, 8080, true) },
		func() { fe.eventually(2, 0, 8080, false) }, func() { fe.eventually(2, 1, 8080, false) })

	// A membership change: h3 joins app, everyone lets it in and it
	// lets them in.
	fe.txn("assign/h3", `["base","app"]`)
	all(func() { fe.eventually(2, 0, 8080, true) }, func() { fe.eventually(2, 1, 8080, true) },
		func() { fe.eventually(0, 2, 8080, true) })

	// An edit: app moves from 8080 to 9090 on every host.
	fe.txn("policy/groups/app", appGroup("app", 9090))
	all(func() { fe.eventually(0, 1, 9090, true) }, func() { fe.eventually(1, 2, 9090, true) }, func() { fe.eventually(2, 0, 9090, true) },
		func() { fe.eventually(0, 1, 8080, false) }, func() { fe.eventually(1, 2, 8080, false) }, func() { fe.eventually(2, 0, 8080, false) })

	fe.allInSync()

	fe.moveWithoutDrops()

	// Kill h3: its lease expires, its address leaves h1's and h2's
	// tables.
	fe.fwds[2].kill9()
	killed := time.Now()
	var took [2]time.Duration
	all(func() { fe.eventually(2, 0, 9090, false); took[0] = time.Since(killed) },
		func() { fe.eventually(2, 1, 9090, false); took[1] = time.Since(killed) })
	t.Logf("h3 killed: dropped by h1 after %v, by h2 after %v (lease TTL %v)", took[0].Round(time.Millisecond), took[1].Round(time.Millisecond), fleetTTL)
	// Within the TTL plus the lessor's check and one sync (and the
	// second a drop takes to show).
	if limit := 2*fleetTTL + 3*time.Second; max(took[0], took[1]) > limit {
		t.Fatalf("a killed host stayed allowed for %v, over %v", max(took[0], took[1]), limit)
	}
	fe.eventually(1, 0, 9090, true) // the others still reach each other

	// The store goes away and h1 restarts: it enforces its saved
	// snapshot before it ever reaches the store.
	fe.etcd.Stop()
	fe.fwds[0].stop()
	f := fe.start(0)
	f.waitLog(0, "saved fleet snapshot at revision")
	all(func() { fe.eventually(1, 0, 9090, true) }, func() { fe.eventually(1, 0, 8080, false) })
}

// moveWithoutDrops renames app to app2 in one transaction (create app2,
// reassign every host, delete app) while h2 opens connections to h1 in a
// loop: none may fail.
func (fe *fleetEnv) moveWithoutDrops() {
	t := fe.t
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if fe.connects(1, 0, 9090) {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	rev := fe.txn("policy/groups/app2", appGroup("app2", 9090),
		"assign/h1", `["base","app2"]`, "assign/h2", `["base","app2"]`, "assign/h3", `["base","app2"]`,
		"policy/groups/app", "")
	for i := range 3 {
		fe.fwds[i].waitLog(0, fmt.Sprintf("fleet snapshot at revision %d", rev))
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-done
	t.Logf("moving app to app2 (revision %d): %d connections passed, %d failed", rev, ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d of %d connections failed while the group moved in one transaction", failed.Load(), ok.Load()+failed.Load())
	}
}

// allInSync waits until fwctl fleet status says that every host
// enforces what the store means for it now: the hash each host reports
// (fwd's syncer) equals the one fwctl computes from the store (the
// admin side), for 20 s.
func (fe *fleetEnv) allInSync() {
	fe.t.Helper()
	var last string
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command(fwctlBin(fe.t), "--store", fe.etcd.Endpoints()[0], "fleet", "status", "-o", "json").Output()
		if err != nil {
			fe.t.Fatalf("fwctl fleet status: %v\n%s", err, out)
		}
		last = string(out)
		var rep fleet.StatusReport
		if err := json.Unmarshal(out, &rep); err != nil {
			fe.t.Fatalf("fwctl fleet status -o json: %v\n%s", err, out)
		}
		synced := 0
		for _, h := range rep.Hosts {
			if h.InSync && h.Hash != "" {
				synced++
			}
		}
		if synced == len(fe.ns) && len(rep.Hosts) == len(fe.ns) {
			return
		}
	}
	fe.t.Fatalf("fwctl fleet status never showed every host in sync:\n%s", last)
}
