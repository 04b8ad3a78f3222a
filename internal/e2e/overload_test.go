package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/netns"
	"github.com/fwd-project/fwd/internal/nfq"
)

// Overload behaviour (DESIGN.md "Data path", issue 6):
//
//   - The kernel queue holds --queue-maxlen packets (default 4096, about
//     20 ms of work at fwd's rate) and the socket buffer 8 MiB, which
//     holds more than a full queue of 128-byte copies: when fwd falls
//     behind, the queue fills first and the kernel decides alone.
//   - Fail-closed (default): a packet that finds the queue full is
//     dropped (kernel_queue_dropped counts it); the flow's sender
//     retransmits, as after any loss. Fail-open: it is accepted unjudged,
//     and the kernel counts nothing (only queued packets get an id).
//   - Established flows never reach the queue (conntrack ESTABLISHED is
//     accepted before NFQUEUE), so a flood of new flows cannot touch them
//     in either mode.
//
// The tests below drive a flood of new UDP flows from many source
// addresses out of a raw socket in the client namespace.

// ovlFlood sends IPv4 UDP packets from a raw socket in namespace ns to
// dst:port, each from the next of 128 source addresses 198.18.0.100-227
// and a new source port, until stop is closed or max elapses. It returns
// how many it sent. The UDP checksum is 0 (none), which conntrack takes
// as valid, so every packet is a NEW flow that reaches the queue.
func ovlFlood(ns string, dst netip.Addr, port uint16, stop <-chan struct{}, max time.Duration) (uint64, error) {
	return netns.Flood{
		Dst: dst, Port: port,
		Src: netip.MustParseAddr("198.18.0.100"), Sources: 128,
		Payload: 8, Duration: max, Stop: stop,
	}.Run(ns)
}

// ovlCounters reads the daemon's counters from its control socket.
func (e *env) ovlCounters() map[string]uint64 {
	e.t.Helper()
	out, err := exec.Command("curl", "-sS", "--max-time", "5", "--unix-socket", e.socket(), "http://fwd/v1/status").Output()
	if err != nil {
		e.t.Fatalf("status over %s: %v", e.socket(), err)
	}
	var st struct {
		Counters map[string]uint64 `json:"counters"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		e.t.Fatalf("status: %v\n%s", err, out)
	}
	return st.Counters
}

// ovlKernel sums the kernel's queue counters in the server namespace.
func (e *env) ovlKernel() nfq.KernelStats {
	e.t.Helper()
	out, err := inNS(e.server, "cat", nfq.ProcPath)
	if err != nil {
		e.t.Fatalf("read %s: %v %s", nfq.ProcPath, err, out)
	}
	ks, err := nfq.ParseKernelStats(strings.NewReader(out))
	if err != nil {
		e.t.Fatal(err)
	}
	return nfq.SumKernelStats(ks, 0, 0xffff)
}

// ovlWait polls the kernel's queue counters in the server namespace
// until ok holds, and fails the test, saying what it waited for and what
// it last read, if that takes longer than limit (a bound for a stuck
// test, not a speed claim).
func (e *env) ovlWait(what string, limit time.Duration, ok func(nfq.KernelStats) bool) nfq.KernelStats {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		k := e.ovlKernel()
		if ok(k) {
			return k
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("waited %v for %s; the kernel's queue counters read %+v", limit, what, k)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ovlFloodRunning waits until the kernel has seen n more packets for the
// queue (queued, or turned away by a full queue or socket) than in k0.
func (e *env) ovlFloodRunning(k0 nfq.KernelStats, n uint64) nfq.KernelStats {
	e.t.Helper()
	seen := func(k nfq.KernelStats) uint64 { return uint64(k.IDSequence) + k.QueueDropped }
	return e.ovlWait(fmt.Sprintf("the flood to reach the queue (%d packets)", n), 15*time.Second,
		func(k nfq.KernelStats) bool { return seen(k)-seen(k0) >= n })
}

// ovlDrained waits until no queued packet waits for a verdict.
func (e *env) ovlDrained() nfq.KernelStats {
	e.t.Helper()
	return e.ovlWait("the queue to drain (queue_total 0)", 15*time.Second,
		func(k nfq.KernelStats) bool { return k.Waiting == 0 })
}

// ovlAnsweredAll checks that fwd answered every packet the kernel queued:
// each id the kernel gave out reached fwd (or was lost to a full socket
// buffer, which the kernel counts), fwd judged each one it received, and
// the kernel took every verdict.
func ovlAnsweredAll(t *testing.T, k nfq.KernelStats, c map[string]uint64) {
	t.Helper()
	judged := c["accepted"] + c["dropped_no_match"] + c["dropped_undecodable"] + c["dropped_no_table"]
	if c["queued"]+k.UserDropped != uint64(k.IDSequence) {
		t.Errorf("the kernel queued %d packets (id sequence) and lost %d to a full socket, but fwd received %d",
			k.IDSequence, k.UserDropped, c["queued"])
	}
	if judged != c["queued"] {
		t.Errorf("fwd received %d packets and judged %d: counters %v", c["queued"], judged, c)
	}
	if c["verdict_errors"] != 0 || c["kernel_waiting"] != 0 {
		t.Errorf("%d verdicts refused by the kernel, %d packets waiting: counters %v", c["verdict_errors"], c["kernel_waiting"], c)
	}
}

// ovlCountUDP counts the datagrams a UDP socket in the server namespace
// receives.
func ovlCountUDP(t *testing.T, ns, addr string) *atomic.Uint64 {
	c := listenUDPIn(t, ns, addr)
	c.SetReadBuffer(8 << 20)
	var n atomic.Uint64
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return &n
}

// pacedStream is an established TCP connection from the client to a sink
// in the server namespace, written at a fixed pace.
type pacedStream struct {
	received atomic.Uint64
	stop     chan struct{}
	done     chan error
}

// Pace: 16 KiB every 2 ms, 8 MiB/s — far below what the link carries on
// a busy 2-core machine, so the rate received only falls when the
// firewall drops or delays the connection's segments.
const (
	paceChunk = 16 << 10
	paceEvery = 2 * time.Millisecond
)

func (e *env) startPacedStream(port int) *pacedStream {
	e.t.Helper()
	ln := listenIn(e.t, e.server, "tcp4", fmt.Sprintf("%s:%d", server4, port))
	s := &pacedStream{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			s.received.Add(uint64(n))
			if err != nil {
				return
			}
		}
	}()
	c, err := dialIn(e.client, "tcp4", client4, fmt.Sprintf("%s:%d", server4, port), 3*time.Second)
	if err != nil {
		e.t.Fatalf("established stream: %v", err)
	}
	go func() {
		defer c.Close()
		chunk := make([]byte, paceChunk)
		tick := time.NewTicker(paceEvery)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				s.done <- nil
				return
			case <-tick.C:
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(chunk); err != nil {
					s.done <- err
					return
				}
			}
		}
	}()
	e.t.Cleanup(func() {
		select {
		case <-s.stop:
		default:
			close(s.stop)
		}
	})
	return s
}

const overloadRules = `version: 1
groups:
  - name: overload
    ingress:
      - {proto: tcp, ports: [9000], from: [any]}
      - {proto: udp, ports: [5353], from: [any]}
`

// TestOverload floods one small queue with new flows far beyond what fwd
// answers, and checks the chosen behaviour: fail-closed drops the flood's
// excess (and never lets a denied packet through), fail-open lets the
// excess through unjudged, and in both modes an established connection
// keeps delivering and the kernel's queue drops show up in fwd's
// counters. It waits on the kernel's queue counters, never on the clock:
// the flood is running once the kernel has seen its packets, over once
// nothing waits in the queue; then every packet the kernel queued must
// have been received and answered by fwd. How fast is for the benchmarks.
func TestOverload(t *testing.T) {
	for _, mode := range []struct {
		name     string
		failOpen bool
	}{{"fail-closed", false}, {"fail-open", true}} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t)
			rules := e.writeRules("rules.yaml", overloadRules)
			args := []string{"--rules", rules, "--queues", "1", "--queue-maxlen", "8"}
			if mode.failOpen {
				args = append(args, "--fail-open")
			}
			e.startFwd(args...)
			denied := ovlCountUDP(t, e.server, server4+":5354") // no rule allows it
			stream := e.startPacedStream(9000)

			k0 := e.ovlKernel()
			fl := e.startFlood(5354)
			e.ovlFloodRunning(k0, 2000)
			// The established stream keeps delivering while the flood runs.
			got0 := stream.received.Load()
			deadline := time.Now().Add(15 * time.Second)
			for stream.received.Load()-got0 < 4*paceChunk*8 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			during := stream.received.Load() - got0
			floodDone := fl.ended()
			sent, err := fl.stop()
			if err != nil {
				t.Fatalf("flood: %v", err)
			}
			if floodDone {
				t.Fatalf("the flood ended (%d packets) before the stream was checked", sent)
			}
			if during < 4*paceChunk*8 {
				t.Errorf("established stream: %d bytes received in 15 s of flood, want %d", during, 4*paceChunk*8)
			}
			k := e.ovlDrained()
			c := e.ovlCounters()
			close(stream.stop)
			if err := <-stream.done; err != nil {
				t.Errorf("established stream broke during the flood: %v", err)
			}
			t.Logf("flood: %d sent, %d queued, %d queue-full, %d socket-full; denied port got %d; stream got %d bytes during the flood; counters %v",
				sent, k.IDSequence, k.QueueDropped, k.UserDropped, denied.Load(), during, c)
			ovlAnsweredAll(t, k, c)

			// The kernel counts a full queue's drops; failing open, it
			// counts nothing: what passed unjudged is sent - queued.
			overflow := k.QueueDropped + k.UserDropped
			if mode.failOpen {
				overflow = denied.Load()
			}
			if overflow == 0 {
				t.Fatalf("no overflow: the flood (%d packets) did not overload a queue of 8", sent)
			}
			if c["kernel_queue_dropped"] != k.QueueDropped || c["kernel_user_dropped"] != k.UserDropped {
				t.Errorf("fwd counters kernel_queue_dropped=%d kernel_user_dropped=%d, kernel says %d and %d",
					c["kernel_queue_dropped"], c["kernel_user_dropped"], k.QueueDropped, k.UserDropped)
			}
			if c["dropped_no_match"] == 0 || c["queued"] == 0 {
				t.Errorf("fwd judged none of the flood: counters %v", c)
			}
			if mode.failOpen {
				// The excess passes unjudged, although no rule allows it.
				// Every flood packet was either queued (and dropped by
				// rule) or passed unjudged; the stream's SYN is the one
				// accepted packet.
				judged := uint64(k.IDSequence) - c["accepted"]
				if denied.Load()+judged > sent {
					t.Errorf("fail-open: %d delivered + %d judged > %d sent: some were judged and passed", denied.Load(), judged, sent)
				}
			} else if denied.Load() != 0 {
				t.Errorf("fail-closed: %d packets to a port no rule allows reached the server", denied.Load())
			}
		})
	}
}

// TestDeniedFloodDoesNotStarveAllowed floods fwd with new flows from
// addresses no rule allows while an allowed client connects 200 times;
// every connection must succeed within the kernel's SYN retransmissions,
// and fwd must answer every packet the kernel queued.
func TestDeniedFloodDoesNotStarveAllowed(t *testing.T) {
	e := newEnv(t)
	rules := e.writeRules("rules.yaml", fmt.Sprintf(`version: 1
groups:
  - name: one-client
    ingress:
      - {proto: tcp, ports: [80], from: [%s/32]}
      - {proto: udp, ports: [5353], from: [%s/32]}
`, client4, client4))
	e.startFwd("--rules", rules)
	ln := listenIn(t, e.server, "tcp4", server4+":80")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "ok\n")
			c.Close()
		}
	}()
	k0 := e.ovlKernel()
	stop := make(chan struct{})
	floodErr := make(chan error, 1)
	var sent uint64
	go func() {
		var err error
		sent, err = ovlFlood(e.client, netip.MustParseAddr(server4), 5353, stop, 30*time.Second)
		floodErr <- err
	}()
	e.ovlFloodRunning(k0, 2000)

	const total, parallel = 200, 8
	var ok, retried atomic.Int32
	var failures []string
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				start := time.Now()
				// The kernel retransmits a lost SYN (after 1, 3, 7 s): a
				// connection may need its retries, and must not need more.
				c, err := dialIn(e.client, "tcp4", client4, server4+":80", 15*time.Second)
				if err == nil {
					c.SetDeadline(time.Now().Add(3 * time.Second))
					var b [3]byte
					_, err = io.ReadFull(c, b[:])
					c.Close()
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				ok.Add(1)
				if time.Since(start) > 900*time.Millisecond {
					retried.Add(1) // the first SYN was lost
				}
				time.Sleep(40 * time.Millisecond) // spread over the flood: about 1 s

			}
		}()
	}
	for i := range total {
		next <- i
	}
	close(next)
	wg.Wait()
	close(stop)
	if err := <-floodErr; err != nil {
		t.Fatalf("flood: %v", err)
	}
	k1 := e.ovlDrained()
	c := e.ovlCounters()
	t.Logf("%d of %d connections succeeded (%d after a SYN retransmission) while %d denied packets were sent: %d queued, %d queue-full, %d socket-full; counters %v",
		ok.Load(), total, retried.Load(), sent, k1.IDSequence-k0.IDSequence, k1.QueueDropped-k0.QueueDropped, k1.UserDropped-k0.UserDropped, c)
	if c["dropped_no_match"] < 1000 {
		t.Fatalf("the flood did not reach fwd: %d dropped by rule", c["dropped_no_match"])
	}
	if n := ok.Load(); n != total {
		t.Errorf("%d of %d allowed connections succeeded during the flood, want all; failures: %v", n, total, failures)
	}
	ovlAnsweredAll(t, k1, c)
}

// flood is a flood of new UDP flows from the client to server4 (ovlFlood),
// running in the background for at most a minute.
type flood struct {
	quit chan struct{}
	done chan struct{}
	sent uint64
	err  error
}

// startFlood starts a flood to server4:port.
func (e *env) startFlood(port uint16) *flood {
	f := &flood{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.sent, f.err = ovlFlood(e.client, netip.MustParseAddr(server4), port, f.quit, time.Minute)
	}()
	return f
}

// ended reports whether the flood stopped by itself.
func (f *flood) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// stop ends the flood and returns how many packets it sent.
func (f *flood) stop() (uint64, error) {
	close(f.quit)
	<-f.done
	return f.sent, f.err
}
