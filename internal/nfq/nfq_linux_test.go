package nfq

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/types/verdict"
	"golang.org/x/sys/unix"
)

const testMark = 0x20000000

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root; CI=true forbids skipping")
	}
	t.Skip("needs root (network namespaces, iptables)")
}

// newNetns creates a network namespace with lo up and returns its name.
func newNetns(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "fwdq-" + hex.EncodeToString(b)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func restore(t *testing.T, ns, script string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-restore: %v\n%s\n%s", err, out, script)
	}
}

// inNetns runs fn on a thread that is in network namespace ns; sockets it
// creates belong to ns.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() {
		defer wg.Done()
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		var f *os.File
		f, err = os.Open("/run/netns/" + ns)
		if err != nil {
			return
		}
		defer f.Close()
		if err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return
		}
		fn()
	}()
	wg.Wait()
	if err != nil {
		t.Fatalf("enter netns %s: %v", ns, err)
	}
}

// TestAcceptMarkCachesOneWayFlow checks the kernel side of the design: an
// accept verdict sets the mark, a rule in the security table (which runs
// after filter on INPUT) saves it to the connmark, and the rule restoring
// it in filter accepts the rest of a one-way UDP flow without queueing it.
// A dropped flow is queued packet after packet.
func TestAcceptMarkCachesOneWayFlow(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) { testAcceptMarkCachesOneWayFlow(t, impl.open) })
	}
}

// impls are the Queue implementations every kernel test runs against.
var impls = []struct {
	name string
	open func(Config) (Queue, error)
}{
	{"simple", func(c Config) (Queue, error) { return OpenSimple(c) }},
	{"batch", func(c Config) (Queue, error) { return OpenBatch(c) }},
}

func testAcceptMarkCachesOneWayFlow(t *testing.T, open func(Config) (Queue, error)) {
	requireRoot(t)
	ns := newNetns(t)
	const queueNum = 7
	restore(t, ns, fmt.Sprintf(`*security
:FWD-SAVE - [0:0]
-A INPUT -j FWD-SAVE
-A FWD-SAVE -m mark --mark %#x/%#x -j CONNMARK --save-mark --nfmask %#x --ctmask %#x
COMMIT
*filter
-A INPUT -m connmark --mark %#x/%#x -j ACCEPT
-A INPUT -p udp -m multiport --dports 5353,5354 -j NFQUEUE --queue-num %d
COMMIT
`, testMark, testMark, testMark, testMark, testMark, testMark, queueNum))

	nsf, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsf.Close()
	q, err := open(Config{Num: queueNum, AcceptMark: testMark, NetNS: int(nsf.Fd()), Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var calls [2]atomic.Int32 // per port
	var badHook atomic.Int32
	h := func(m *Msg) verdict.Verdict {
		if m.Hook != HookLocalIn {
			badHook.Add(1)
		}
		// IPv4 + UDP: destination port at 20+2.
		if len(m.Payload) < 24 {
			return verdict.Drop
		}
		port := int(m.Payload[22])<<8 | int(m.Payload[23])
		if port == 5353 {
			calls[0].Add(1)
			return verdict.Accept
		}
		calls[1].Add(1)
		return verdict.Drop
	}
	if err := q.Start(h); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	const n = 20
	var got [2]int
	inNetns(t, ns, func() {
		var lns [2]*net.UDPConn
		for i, port := range []int{5353, 5354} {
			lns[i], err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			if err != nil {
				return
			}
			defer lns[i].Close()
		}
		for i, ln := range lns {
			c, err := net.DialUDP("udp4", nil, ln.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Error(err)
				return
			}
			// The first packet alone: packets that arrive while the
			// first one waits for its verdict find no confirmed
			// conntrack entry yet and are queued too.
			buf := make([]byte, 16)
			c.Write([]byte("x"))
			ln.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, _, err := ln.ReadFromUDP(buf); err == nil {
				got[i]++
			}
			for j := 1; j < n; j++ {
				c.Write([]byte("x"))
			}
			c.Close()
			for {
				ln.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				if _, _, err := ln.ReadFromUDP(buf); err != nil {
					break
				}
				got[i]++
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != n || calls[0].Load() != 1 {
		t.Errorf("accepted flow: %d of %d packets delivered, %d queued; want all delivered, 1 queued", got[0], n, calls[0].Load())
	}
	if got[1] != 0 || calls[1].Load() != n {
		t.Errorf("dropped flow: %d delivered, %d queued; want 0 delivered, %d queued", got[1], calls[1].Load(), n)
	}
	if badHook.Load() != 0 {
		t.Errorf("%d packets with a hook other than LOCAL_IN", badHook.Load())
	}
	st := q.Stats()
	if st.Received != uint64(n+1) || st.VerdictErrors != 0 {
		t.Errorf("stats %+v, want %d received, no verdict errors", st, n+1)
	}
	// The kernel's view agrees.
	out := run(t, "ip", "netns", "exec", ns, "cat", ProcPath)
	ks, err := ParseKernelStats(bytes.NewReader([]byte(out)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 1 || ks[0].Num != queueNum || ks[0].IDSequence != uint32(n+1) || ks[0].CopyRange != DefaultCopyRange {
		t.Errorf("kernel stats %+v, want queue %d with %d packets, copy range %d", ks, queueNum, n+1, DefaultCopyRange)
	}
}

// TestBurstAnsweredOnce queues a burst of packets faster than one at a
// time and checks that every packet id reached the handler exactly once
// and that the kernel holds no packet waiting for a verdict afterwards.
func TestBurstAnsweredOnce(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			requireRoot(t)
			ns := newNetns(t)
			const queueNum, n = 8, 3000
			restore(t, ns, fmt.Sprintf("*filter\n-A INPUT -p udp --dport 5360 -j NFQUEUE --queue-num %d\nCOMMIT\n", queueNum))
			nsf, err := os.Open("/run/netns/" + ns)
			if err != nil {
				t.Fatal(err)
			}
			defer nsf.Close()
			q, err := impl.open(Config{Num: queueNum, NetNS: int(nsf.Fd()), BatchSize: 32, Log: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			var seen sync.Map
			var dups, total atomic.Int32
			if err := q.Start(func(m *Msg) verdict.Verdict {
				if _, loaded := seen.LoadOrStore(m.ID, true); loaded {
					dups.Add(1)
				}
				total.Add(1)
				return verdict.Drop
			}); err != nil {
				t.Fatal(err)
			}
			inNetns(t, ns, func() {
				c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5360})
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				for range n {
					c.Write([]byte("x"))
				}
			})
			var ks []KernelStats
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				ks, err = ParseKernelStats(strings.NewReader(run(t, "ip", "netns", "exec", ns, "cat", ProcPath)))
				if err != nil {
					t.Fatal(err)
				}
				if len(ks) == 1 && uint64(ks[0].IDSequence) == uint64(total.Load())+ks[0].QueueDropped+ks[0].UserDropped && ks[0].Waiting == 0 {
					break
				}
			}
			if err := q.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if len(ks) != 1 {
				t.Fatalf("kernel stats %+v, want one queue", ks)
			}
			k := ks[0]
			if k.Waiting != 0 || uint64(k.IDSequence) != uint64(total.Load())+k.QueueDropped+k.UserDropped {
				t.Errorf("kernel %+v: %d handled; want every queued packet answered, none waiting", k, total.Load())
			}
			if dups.Load() != 0 {
				t.Errorf("%d ids handled twice", dups.Load())
			}
			if k.IDSequence < n/2 {
				t.Errorf("only %d of %d packets queued", k.IDSequence, n)
			}
			if st := q.Stats(); st.Received != uint64(total.Load()) || st.VerdictErrors != 0 {
				t.Errorf("stats %+v, want %d received, no verdict errors", st, total.Load())
			}
		})
	}
}

// TestLoopServesSeveralQueues binds two batch queues to one Loop and
// queues bursts to both: with 8 slots per receive a burst fills every
// slot, so a queue moves to a goroutine of its own and back. Every packet
// must be answered exactly once, by the handler of its own queue, and
// closing one queue must leave the other served. The same with a nap
// after every batch (fwd --queue-nap).
func TestLoopServesSeveralQueues(t *testing.T) {
	requireRoot(t)
	for _, nap := range []time.Duration{0, 50 * time.Microsecond} {
		t.Run(fmt.Sprintf("nap %v", nap), func(t *testing.T) { loopServesSeveralQueues(t, nap) })
	}
}

func loopServesSeveralQueues(t *testing.T, nap time.Duration) {
	ns := newNetns(t)
	const base, n = 10, 2000
	restore(t, ns, fmt.Sprintf("*filter\n-A INPUT -p udp --dport 5361 -j NFQUEUE --queue-num %d\n-A INPUT -p udp --dport 5362 -j NFQUEUE --queue-num %d\nCOMMIT\n", base, base+1))
	nsf, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsf.Close()
	loop := NewLoop(nap)
	var qs [2]*Batch
	var seen [2]sync.Map
	var dups, total [2]atomic.Int32
	for i := range qs {
		qs[i], err = OpenBatch(Config{Num: uint16(base + i), NetNS: int(nsf.Fd()), BatchSize: 8, Loop: loop, Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := qs[i].Start(func(m *Msg) verdict.Verdict {
			if _, loaded := seen[i].LoadOrStore(m.ID, true); loaded {
				dups[i].Add(1)
			}
			total[i].Add(1)
			return verdict.Drop
		}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(ports ...int) {
		inNetns(t, ns, func() {
			for _, p := range ports {
				c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
				if err != nil {
					t.Error(err)
					return
				}
				for range n {
					c.Write([]byte("x"))
				}
				c.Close()
			}
		})
	}
	// settled waits until the kernel holds no packet of queue i and every
	// id it queued was handled or dropped by the kernel.
	settled := func(i int) KernelStats {
		t.Helper()
		var k KernelStats
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			ks, err := ParseKernelStats(strings.NewReader(run(t, "ip", "netns", "exec", ns, "cat", ProcPath)))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ks {
				if s.Num == uint16(base+i) {
					k = s
				}
			}
			if uint64(k.IDSequence) == uint64(total[i].Load())+k.QueueDropped+k.UserDropped && k.Waiting == 0 {
				break
			}
		}
		if k.Waiting != 0 || uint64(k.IDSequence) != uint64(total[i].Load())+k.QueueDropped+k.UserDropped {
			t.Errorf("queue %d: kernel %+v, %d handled; want every queued packet answered, none waiting", base+i, k, total[i].Load())
		}
		return k
	}
	send(5361, 5362)
	for i := range qs {
		if k := settled(i); k.IDSequence < n/2 {
			t.Errorf("queue %d: only %d of %d packets queued", base+i, k.IDSequence, n)
		}
	}
	if err := qs[0].Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	before := total[1].Load()
	send(5362)
	settled(1)
	if total[1].Load()-before < n/2 {
		t.Errorf("after closing queue %d, queue %d handled %d of %d packets", base, base+1, total[1].Load()-before, n)
	}
	if err := qs[1].Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for i := range qs {
		if dups[i].Load() != 0 {
			t.Errorf("queue %d: %d ids handled twice", base+i, dups[i].Load())
		}
		if st := qs[i].Stats(); st.Received != uint64(total[i].Load()) || st.VerdictErrors != 0 {
			t.Errorf("queue %d: stats %+v, want %d received, no verdict errors", base+i, st, total[i].Load())
		}
	}
}

// TestTurnsStopWhileWedged checks the liveness signal behind fwd's
// systemd watchdog: an idle Loop keeps turning (it waits with a
// timeout), a handler that never returns stops every queue of its Loop
// from turning, and the turns resume when it returns.
func TestTurnsStopWhileWedged(t *testing.T) {
	for _, queues := range []int{1, 2} {
		t.Run(fmt.Sprint(queues, " queues"), func(t *testing.T) { testTurnsStopWhileWedged(t, queues) })
	}
}

func testTurnsStopWhileWedged(t *testing.T, queues int) {
	requireRoot(t)
	ns := newNetns(t)
	const base = 20
	restore(t, ns, fmt.Sprintf("*filter\n-A INPUT -p udp --dport 5371 -j NFQUEUE --queue-num %d\nCOMMIT\n", base))
	nsf, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsf.Close()
	loop := NewLoop(0)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	qs := make([]*Batch, queues)
	for i := range qs {
		qs[i], err = OpenBatch(Config{Num: uint16(base + i), NetNS: int(nsf.Fd()), Loop: loop, Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := qs[i].Start(func(m *Msg) verdict.Verdict {
			select {
			case entered <- struct{}{}:
				<-release // the first packet wedges the loop
			default:
			}
			return verdict.Drop
		}); err != nil {
			t.Fatal(err)
		}
		defer qs[i].Close()
	}
	var _ Turner = qs[0]
	waitTurns := func(what string) {
		t.Helper()
		from := make([]uint64, queues)
		for i, q := range qs {
			from[i] = q.Turns()
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			moved := true
			for i, q := range qs {
				moved = moved && q.Turns() > from[i]+2
			}
			if moved {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: turns did not move", what)
			}
		}
	}
	waitTurns("idle")
	inNetns(t, ns, func() {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5371})
		if err != nil {
			t.Error(err)
			return
		}
		c.Write([]byte("x"))
		c.Close()
	})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the packet never reached the handler")
	}
	before := make([]uint64, queues)
	for i, q := range qs {
		before[i] = q.Turns()
	}
	time.Sleep(5 * closePoll) // an alive loop turns at least every closePoll
	for i, q := range qs {
		if q.Turns() != before[i] {
			t.Errorf("queue %d turned (%d -> %d) while its loop was wedged in a handler", base+i, before[i], q.Turns())
		}
	}
	close(release)
	waitTurns("after the handler returned")
}
