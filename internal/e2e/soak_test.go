package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fwd-project/fwd/internal/flowlog/flowlogtest"
	"github.com/fwd-project/fwd/internal/nfq"
)

// The soak (issue 16, "Prove it, in CI"): fwd under mixed allowed and
// denied traffic, over both families, while its rules change twice a
// second, by runtime edits and by reloads, for FWD_SOAK (a Go duration;
// `make soak` sets it, CI runs 60s, without it the test runs for
// soakDefault so that `make test` exercises it too). It proves, with
// figures in the log:
//
//   - every new connection or UDP flow to an always-allowed port gets
//     through (a SYN retransmitted or a datagram sent again is counted,
//     not failed), and none to an always-denied port ever does;
//   - every connection that got through to the toggled port did so at a
//     moment when the rule opening it could have been live: live after
//     one change's acknowledgment and before the next one started, or
//     being changed;
//   - fwd's RSS, goroutines and open descriptors stay flat after the
//     first third (the warm-up; at least 12 s);
//   - the kernel queued no packet that fwd did not answer: none dropped
//     by a full queue or socket, fwd received every id and judged every
//     packet it received, and the queue drains to zero.

const (
	soakDefault = 20 * time.Second

	soakAllowedTCP = 80   // always allowed
	soakAllowedUDP = 53   // always allowed
	soakDeniedTCP  = 9000 // never allowed
	soakDeniedUDP  = 9001 // never allowed
	soakToggledTCP = 8080 // opened and closed every second
	soakChurnUDP   = 7000 // rules that change the table, from addresses no test traffic has

	soakTick  = 500 * time.Millisecond // one edit or reload per tick
	soakEvery = 4                      // ticks between two samples of fwd's resources
	soakPause = 20 * time.Millisecond  // a client's pause between two new flows

	// A client waits this long for a connection it expects to pass:
	// through the kernel's SYN retransmissions at 1, 3 and 7 s.
	soakPassWait = 10 * time.Second
	// and this long for one it expects to be dropped: less than the
	// first SYN retransmission (1 s), so that one attempt is one SYN.
	soakDropWait = 400 * time.Millisecond
)

// soakDuration is FWD_SOAK, or soakDefault without it.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("FWD_SOAK")
	if v == "" {
		t.Logf("FWD_SOAK unset: a %v soak (make soak runs a longer one)", soakDefault)
		return soakDefault
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 10*time.Second {
		t.Fatalf("FWD_SOAK=%q: want a Go duration of at least 10s, such as 60s or 5m", v)
	}
	return d
}

// soakClass is what a client expects of the port it connects to.
type soakClass int

const (
	soakAllowTCP soakClass = iota
	soakAllowUDP
	soakDenyTCP
	soakDenyUDP
	soakToggleTCP
	soakClasses
)

func (c soakClass) String() string {
	return [...]string{"allowed tcp/80", "allowed udp/53", "denied tcp/9000", "denied udp/9001", "toggled tcp/8080"}[c]
}

// soakAttempt is one new connection or UDP flow from the client.
type soakAttempt struct {
	class   soakClass
	v6      bool
	t0, t1  time.Time // before the first packet left; when it passed or was given up
	passed  bool      // connected (tcp) or answered (udp)
	retries int       // SYNs retransmitted or datagrams sent again before it passed
	err     error     // neither a pass nor a silent drop: a reset, a failed echo
}

func (a soakAttempt) String() string {
	fam := "IPv4"
	if a.v6 {
		fam = "IPv6"
	}
	return fmt.Sprintf("%s %s at %s-%s passed=%v retries=%d err=%v",
		a.class, fam, a.t0.Format("15:04:05.000"), a.t1.Format("15:04:05.000"), a.passed, a.retries, a.err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// soakTCP opens one connection to addr, waiting up to wait, and echoes a
// byte over it. passed says whether the connection was established.
func soakTCP(network, addr string, wait time.Duration) (passed bool, retries int, err error) {
	d := net.Dialer{Timeout: wait}
	c, err := d.Dial(network, addr)
	if err != nil {
		if isTimeout(err) {
			return false, 0, nil // silent drop
		}
		return false, 0, err
	}
	defer c.Close()
	// SYNs the kernel sent again: the first ones were dropped.
	if rc, err := c.(*net.TCPConn).SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				retries = int(info.Total_retrans)
			}
		})
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := []byte{'s'}
	if _, err := c.Write(buf); err != nil {
		return true, retries, fmt.Errorf("echo: %w", err)
	}
	if _, err := c.Read(buf); err != nil {
		return true, retries, fmt.Errorf("echo: %w", err)
	}
	return true, retries, nil
}

// soakUDP starts one UDP flow to addr (a new socket: a new source port)
// and waits for the echo, sending up to tries datagrams each wait apart.
func soakUDP(network, addr string, tries int, wait time.Duration) (passed bool, retries int, err error) {
	c, err := net.Dial(network, addr)
	if err != nil {
		return false, 0, err
	}
	defer c.Close()
	buf := make([]byte, 16)
	for try := range tries {
		if _, err := c.Write([]byte("soak")); err != nil {
			return false, try, err
		}
		c.SetReadDeadline(time.Now().Add(wait))
		if _, err := c.Read(buf); err == nil {
			return true, try, nil
		} else if !isTimeout(err) {
			return false, try, err
		}
	}
	return false, tries - 1, nil
}

// soakClient opens new flows of one class and family, soakPause apart,
// until stop is closed. It runs on a thread in the client namespace.
func soakClient(class soakClass, v6 bool, stop <-chan struct{}) []soakAttempt {
	host, tcp, udp := server4, "tcp4", "udp4"
	if v6 {
		host, tcp, udp = server6, "tcp6", "udp6"
	}
	addr := func(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
	var out []soakAttempt
	for {
		select {
		case <-stop:
			return out
		default:
		}
		a := soakAttempt{class: class, v6: v6, t0: time.Now()}
		switch class {
		case soakAllowTCP:
			a.passed, a.retries, a.err = soakTCP(tcp, addr(soakAllowedTCP), soakPassWait)
		case soakDenyTCP:
			a.passed, a.retries, a.err = soakTCP(tcp, addr(soakDeniedTCP), soakDropWait)
		case soakToggleTCP:
			a.passed, a.retries, a.err = soakTCP(tcp, addr(soakToggledTCP), soakDropWait)
		case soakAllowUDP:
			a.passed, a.retries, a.err = soakUDP(udp, addr(soakAllowedUDP), 4, time.Second)
		case soakDenyUDP:
			a.passed, a.retries, a.err = soakUDP(udp, addr(soakDeniedUDP), 1, soakDropWait)
		}
		a.t1 = time.Now()
		out = append(out, a)
		time.Sleep(soakPause)
	}
}

// soakChange is one edit or reload: the toggled rule was in state before
// until start, in either state until ack, and in state after from then on.
type soakChange struct {
	start, ack    time.Time
	before, after bool
}

// soakTimeline is what the test knows of the toggled rule's life: its
// state at the start and every change, in order, none overlapping.
type soakTimeline struct {
	initial bool
	changes []soakChange
}

// could says whether the toggled rule could have been live (state true)
// or absent (false) at some instant in [a, b].
func (tl *soakTimeline) could(state bool, a, b time.Time) bool {
	overlaps := func(from, to time.Time) bool { // zero from: since ever; zero to: until now
		return (from.IsZero() || !from.After(b)) && (to.IsZero() || !a.After(to))
	}
	cur, since := tl.initial, time.Time{}
	for _, ch := range tl.changes {
		if cur == state && overlaps(since, ch.start) {
			return true
		}
		if (ch.before == state || ch.after == state) && overlaps(ch.start, ch.ack) {
			return true
		}
		cur, since = ch.after, ch.ack
	}
	return cur == state && overlaps(since, time.Time{})
}

// soakRules is the rules file the reloads write: tcp 80 and udp 53 open,
// 8080 open when on (in group local, where fwctl's edits go), and a churn
// rule that differs on every reload so that each one swaps a new table.
func soakRules(on bool, n int) string {
	s := fmt.Sprintf(`version: 1
groups:
  - name: soak
    ingress:
      - {proto: tcp, ports: %d, from: [any]}
      - {proto: udp, ports: %d, from: [any]}
      - {proto: udp, ports: %d, from: [%s], description: churn %d}
`, soakAllowedTCP, soakAllowedUDP, soakChurnUDP, soakChurnAddr(n), n)
	if on {
		s += fmt.Sprintf("  - name: local\n    ingress:\n      - {proto: tcp, ports: %d, from: [any]}\n", soakToggledTCP)
	}
	return s
}

// soakChurnAddr is a peer no test traffic comes from.
func soakChurnAddr(n int) string { return fmt.Sprintf("198.19.%d.%d", n/250%250, 1+n%250) }

// The steps, one per tick: every second has one edit and one reload,
// and the toggled rule changes every second, by an edit or a reload.
type soakStep int

const (
	soakEditAllow  soakStep = iota // fwctl allow 8080/tcp
	soakEditDelete                 // fwctl delete allow 8080/tcp
	soakEditChurn                  // fwctl allow a churn rule; 8080 unchanged
	soakReloadCtl                  // rewrite the file, fwctl reload
	soakReloadHUP                  // rewrite the file, SIGHUP
)

var soakCycle = [...]struct {
	step soakStep
	on   bool // the toggled rule's state after the step
}{
	{soakEditAllow, true},
	{soakReloadCtl, true},
	{soakEditDelete, false},
	{soakReloadHUP, false},
	{soakReloadCtl, true},
	{soakEditChurn, true},
	{soakReloadHUP, false},
	{soakEditChurn, false},
}

// soakRun is the state of one soak.
type soakRun struct {
	e            *env
	f            *fwd
	path         string
	tl           soakTimeline
	edits, loads int
}

// change runs step n of the cycle and records it in the timeline.
func (s *soakRun) change(n int) {
	t := s.e.t
	t.Helper()
	c := soakCycle[n%len(soakCycle)]
	before := s.tl.initial
	if k := len(s.tl.changes); k > 0 {
		before = s.tl.changes[k-1].after
	}
	ch := soakChange{before: before, after: c.on, start: time.Now()}
	ctl := func(want string, args ...string) {
		t.Helper()
		r := s.e.fwctl(args...)
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("%s\nwant exit 0 and %q", r, want)
		}
		s.edits++
	}
	port := fmt.Sprintf("%d/tcp", soakToggledTCP)
	switch c.step {
	case soakEditAllow:
		ctl("Rule added", "allow", port)
	case soakEditDelete:
		ctl("Rule deleted", "delete", "allow", port)
	case soakEditChurn:
		ctl("Rule added", "allow", "from", soakChurnAddr(n), "to", "any", "port", strconv.Itoa(soakChurnUDP), "proto", "udp")
	case soakReloadCtl:
		writeAtomic(t, s.path, soakRules(c.on, n))
		ch.start = time.Now()
		if r := s.e.fwctl("reload"); r.code != 0 || !strings.Contains(r.stdout, "reloaded") {
			t.Fatalf("%s\nwant exit 0 and the rules reloaded", r)
		}
		s.loads++
	case soakReloadHUP:
		writeAtomic(t, s.path, soakRules(c.on, n))
		ch.start = time.Now()
		from := s.f.mark()
		s.f.signal(syscall.SIGHUP)
		if line := s.f.waitLogAny(from, "msg=reloaded", "reload failed", "rules unchanged"); !strings.Contains(line, "msg=reloaded") {
			t.Fatalf("SIGHUP: %s, want the rules reloaded", line)
		}
		s.loads++
	}
	ch.ack = time.Now()
	s.tl.changes = append(s.tl.changes, ch)
}

// waitLogAny waits for a log line after line from containing any of
// substrs and returns it.
func (f *fwd) waitLogAny(from int, substrs ...string) string {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		f.mu.Lock()
		for _, l := range f.lines[min(from, len(f.lines)):] {
			for _, s := range substrs {
				if strings.Contains(l, s) {
					f.mu.Unlock()
					return l
				}
			}
		}
		f.mu.Unlock()
		select {
		case <-f.done:
			f.t.Fatalf("fwd exited (%v) before logging any of %q:\n%s", f.err, substrs, f.log())
		default:
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("fwd did not log any of %q:\n%s", substrs, f.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// soakSample is fwd's resources at one moment.
type soakSample struct {
	at         time.Duration // since the soak started
	rssKiB     uint64
	goroutines uint64
	fds        uint64
}

// sample reads fwd's RSS and open descriptors from /proc and its
// goroutines from its status counters.
func (s *soakRun) sample(pid int, at time.Duration) soakSample {
	t := s.e.t
	t.Helper()
	smp := soakSample{at: at}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("fwd's status: %v", err)
	}
	for l := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			smp.rssKiB, err = strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", l, err)
			}
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("fwd's descriptors: %v", err)
	}
	smp.fds = uint64(len(fds))
	c := s.e.ovlCounters()
	g, ok := c["goroutines"]
	if smp.rssKiB == 0 || !ok {
		t.Fatalf("fwd's samples: VmRSS %d kB, goroutines counter present %v", smp.rssKiB, ok)
	}
	smp.goroutines = g
	return smp
}

// soakWarmUp is the shortest warm-up: a -race build's heap takes 10-15 s
// of this traffic to reach its plateau (its RSS doubles on the way), so
// the 20 s soak of make test would otherwise call that growth a leak.
const soakWarmUp = 12 * time.Second

// soakFlat checks that no sample after the warm-up (the first third of
// d, at least soakWarmUp) rises above the warm-up's highest by more than
// a leak would explain, and returns the reasons it does.
func soakFlat(samples []soakSample, d time.Duration) []string {
	var warm, later soakSample
	nWarm, nLater := 0, 0
	warmUp := max(d/3, soakWarmUp)
	for _, s := range samples {
		m := &warm
		if s.at >= warmUp {
			m, nLater = &later, nLater+1
		} else {
			nWarm++
		}
		m.rssKiB, m.goroutines, m.fds = max(m.rssKiB, s.rssKiB), max(m.goroutines, s.goroutines), max(m.fds, s.fds)
	}
	if nWarm == 0 || nLater < 2 {
		return []string{fmt.Sprintf("%d samples in the warm-up and %d after it, want at least 1 and 2", nWarm, nLater)}
	}
	var bad []string
	// RSS moves with the heap's and the race detector's cycles: half
	// again the warm-up's peak plus 8 MiB. A leak of a few hundred bytes
	// per flow or per reload goes past that within minutes.
	if lim := warm.rssKiB*3/2 + 8<<10; later.rssKiB > lim {
		bad = append(bad, fmt.Sprintf("RSS reached %d kB after the warm-up, over %d kB (warm-up peak %d kB × 1.5 + 8 MiB)", later.rssKiB, lim, warm.rssKiB))
	}
	// Goroutines and descriptors: a status request, a reconcile's
	// iptables-save child and an edit in flight come and go; a few more
	// than the warm-up's peak.
	if lim := warm.goroutines + 8; later.goroutines > lim {
		bad = append(bad, fmt.Sprintf("goroutines reached %d after the warm-up, over %d (warm-up peak + 8)", later.goroutines, lim))
	}
	if lim := warm.fds + 8; later.fds > lim {
		bad = append(bad, fmt.Sprintf("open descriptors reached %d after the warm-up, over %d (warm-up peak + 8)", later.fds, lim))
	}
	return bad
}

// soakQueue waits for the queue to drain and reads the kernel's queue
// counters and fwd's, twice, until no packet was queued in between.
func (e *env) soakQueue() (nfq.KernelStats, map[string]uint64) {
	e.t.Helper()
	for range 50 {
		k := e.ovlDrained()
		c := e.ovlCounters()
		if e.ovlKernel() == k {
			return k, c
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatal("packets kept reaching the queue after the traffic stopped")
	return nfq.KernelStats{}, nil
}

// soakServe starts the server side: echo on every port the clients use.
func (e *env) soakServe() {
	e.t.Helper()
	for _, p := range []int{soakAllowedTCP, soakDeniedTCP, soakToggledTCP} {
		echoServe(listenIn(e.t, e.server, "tcp", fmt.Sprintf(":%d", p)))
	}
	for _, p := range []int{soakAllowedUDP, soakDeniedUDP} {
		c := listenUDPIn(e.t, e.server, fmt.Sprintf(":%d", p))
		go func() {
			buf := make([]byte, 64)
			for {
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				c.WriteTo(buf[:n], from)
			}
		}()
	}
}

// TestSoak: see the top of this file. Its figures are logged as a table
// for the README.
func TestSoak(t *testing.T) {
	t.Parallel()
	d := soakDuration(t)
	e := newEnv(t)
	e.soakServe()
	// Neighbour discovery done before the clients start: a first flow
	// that waits for it would be counted as a retry.
	for _, dst := range []string{server4, server6} {
		if err := e.ping(dst, 5*time.Second); err != nil {
			t.Fatalf("ping %s before fwd starts: %v", dst, err)
		}
	}
	path := e.writeRules("rules.yaml", soakRules(false, 0))
	flowLog := filepath.Join(e.dir, "flows.log")
	f := e.startFwd("--rules", path, "--queues", "2", "--flow-log", flowLog, "--flow-log-rate", "1000000")
	pid := f.cmd.Process.Pid // ip netns exec execs fwd in place
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || filepath.Base(exe) != filepath.Base(fwdBin) {
		t.Fatalf("pid %d is %q (%v), not fwd", pid, exe, err)
	}
	s := &soakRun{e: e, f: f, path: path}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var attempts []soakAttempt
	var clientErr error
	for class := range soakClasses {
		for _, v6 := range []bool{false, true} {
			wg.Go(func() {
				var got []soakAttempt
				err := do(e.client, func() error { got = soakClient(class, v6, stop); return nil })
				mu.Lock()
				defer mu.Unlock()
				attempts, clientErr = append(attempts, got...), errors.Join(clientErr, err)
			})
		}
	}
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(halt) // before the namespaces go, also when the test fails

	start := time.Now()
	var samples []soakSample
	tick := time.NewTicker(soakTick)
	defer tick.Stop()
	for n := 0; time.Since(start) < d; n++ {
		if n%soakEvery == 0 {
			samples = append(samples, s.sample(pid, time.Since(start)))
		}
		s.change(n)
		<-tick.C
	}
	samples = append(samples, s.sample(pid, time.Since(start)))
	elapsed := time.Since(start)
	halt()
	if clientErr != nil {
		t.Fatalf("clients: %v", clientErr)
	}
	k, c := e.soakQueue()

	// Traffic: every attempt against what the rules allowed.
	type tally struct{ tried, passed, retried, dropped, inconsistent, dropLive int }
	var by [soakClasses][2]tally
	var bad []string
	retried := 0
	report := func(format string, args ...any) {
		if len(bad) < 20 {
			bad = append(bad, fmt.Sprintf(format, args...))
		} else if len(bad) == 20 {
			bad = append(bad, "...")
		}
	}
	for _, a := range attempts {
		fam := 0
		if a.v6 {
			fam = 1
		}
		tl := &by[a.class][fam]
		tl.tried++
		if a.passed {
			tl.passed++
		} else {
			tl.dropped++
		}
		if a.retries > 0 {
			tl.retried++
			if retried++; retried <= 10 {
				t.Logf("retried: %v (%.3fs into the soak)", a, a.t0.Sub(start).Seconds())
			}
		}
		switch {
		case a.err != nil:
			report("%v: want a pass or a silent drop", a)
		case (a.class == soakAllowTCP || a.class == soakAllowUDP) && !a.passed:
			report("%v: an always-allowed port did not answer", a)
		case (a.class == soakDenyTCP || a.class == soakDenyUDP) && a.passed:
			report("%v: an always-denied port answered", a)
		case a.class == soakToggleTCP && a.passed && !s.tl.could(true, a.t0, a.t1):
			// The verdict fell between t0 and t1: the rule must
			// have been live, or being changed, at some instant of it.
			tl.inconsistent++
			report("%v: passed while the toggled rule was absent", a)
		case a.class == soakToggleTCP && !a.passed && !s.tl.could(false, a.t0, a.t1):
			// Counted, not failed: a client that gives up cannot
			// tell a drop from a verdict that came after it gave up.
			tl.dropLive++
		}
	}
	for i := range bad {
		t.Errorf("soak: %s", bad[i])
	}
	tog := by[soakToggleTCP]
	if tog[0].passed+tog[1].passed == 0 || tog[0].dropped+tog[1].dropped == 0 {
		t.Errorf("the toggled port passed %d and was dropped %d times: want both, or the edits and reloads did not take effect",
			tog[0].passed+tog[1].passed, tog[0].dropped+tog[1].dropped)
	}

	// fwd's own verdicts, one flow log line each: none of them dropped a
	// packet of an always-allowed port. (A client's retries cannot tell
	// that: a retransmitted SYN passes.)
	soakNoAllowedDropped(t, f, c, flowLog)
	clientDrops := by[soakDenyTCP][0].tried + by[soakDenyTCP][1].tried + by[soakDenyUDP][0].tried + by[soakDenyUDP][1].tried +
		tog[0].dropped + tog[1].dropped

	// The queue: every packet the kernel queued, fwd answered.
	ovlAnsweredAll(t, k, c)
	if k.QueueDropped != 0 || k.UserDropped != 0 || c["dropped_undecodable"] != 0 || c["dropped_no_table"] != 0 {
		t.Errorf("lost or unjudged: %d packets found the queue full, %d the socket full; fwd dropped %d undecodable, %d with no table",
			k.QueueDropped, k.UserDropped, c["dropped_undecodable"], c["dropped_no_table"])
	}

	// Resources.
	for _, smp := range samples {
		t.Logf("sample %6.1fs: RSS %6d kB, goroutines %3d, descriptors %3d", smp.at.Seconds(), smp.rssKiB, smp.goroutines, smp.fds)
	}
	for _, why := range soakFlat(samples, elapsed) {
		t.Errorf("not flat after the warm-up: %s", why)
	}

	// The figures, as a Markdown table for the README.
	var r strings.Builder
	first, last := samples[0], samples[len(samples)-1]
	peak := first
	for _, smp := range samples {
		peak.rssKiB, peak.goroutines, peak.fds = max(peak.rssKiB, smp.rssKiB), max(peak.goroutines, smp.goroutines), max(peak.fds, smp.fds)
	}
	race := ""
	if raceEnabled {
		race = " (fwd built with -race)"
	}
	fmt.Fprintf(&r, "soak: %v%s, new flows %v apart per class and family, one edit and one reload every second\n\n", elapsed.Round(time.Second), race, soakPause)
	fmt.Fprintf(&r, "| class | IPv4 tried | passed | IPv6 tried | passed | retried | wrong |\n|---|---|---|---|---|---|---|\n")
	for class := range soakClasses {
		v4, v6 := by[class][0], by[class][1]
		wrong := 0
		switch class {
		case soakAllowTCP, soakAllowUDP:
			wrong = v4.dropped + v6.dropped
		case soakDenyTCP, soakDenyUDP:
			wrong = v4.passed + v6.passed
		case soakToggleTCP:
			wrong = v4.inconsistent + v6.inconsistent
		}
		fmt.Fprintf(&r, "| %s | %d | %d | %d | %d | %d | %d |\n", class, v4.tried, v4.passed, v6.tried, v6.passed, v4.retried+v6.retried, wrong)
	}
	fmt.Fprintf(&r, "\n| what | figure |\n|---|---|\n")
	fmt.Fprintf(&r, "| edits (fwctl allow/delete) | %d |\n| reloads (file rewritten; fwctl reload, SIGHUP) | %d |\n", s.edits, s.loads)
	fmt.Fprintf(&r, "| toggled port dropped while its rule was live (a verdict later than the client's %v wait) | %d |\n", soakDropWait, tog[0].dropLive+tog[1].dropLive)
	fmt.Fprintf(&r, "| packets queued by the kernel / received by fwd / judged | %d / %d / %d |\n", k.IDSequence, c["queued"],
		c["accepted"]+c["dropped_no_match"]+c["dropped_undecodable"]+c["dropped_no_table"])
	fmt.Fprintf(&r, "| fwd's verdicts: accepted / dropped (no rule; the clients saw %d flows dropped) | %d / %d |\n",
		clientDrops, c["accepted"], c["dropped_no_match"])
	fmt.Fprintf(&r, "| lost: queue full / socket full / verdict errors / left waiting | %d / %d / %d / %d |\n", k.QueueDropped, k.UserDropped, c["verdict_errors"], k.Waiting)
	fmt.Fprintf(&r, "| fwd RSS start / peak / end | %d / %d / %d kB |\n", first.rssKiB, peak.rssKiB, last.rssKiB)
	fmt.Fprintf(&r, "| goroutines start / peak / end | %d / %d / %d |\n", first.goroutines, peak.goroutines, last.goroutines)
	fmt.Fprintf(&r, "| open descriptors start / peak / end | %d / %d / %d |\n", first.fds, peak.fds, last.fds)
	t.Logf("%s", r.String())
}

// soakNoAllowedDropped stops fwd, which flushes its flow log, and checks
// that no line rejects a flow to an always-allowed port, and that no line
// was lost (a lost line could have been one).
func soakNoAllowedDropped(t *testing.T, f *fwd, c map[string]uint64, flowLog string) {
	t.Helper()
	if c["flow_log_dropped"] != 0 || c["flow_log_skipped"] != 0 || c["flow_log_errors"] != 0 {
		t.Errorf("the flow log lost lines: %v", c)
	}
	f.stop()
	data, err := os.ReadFile(flowLog)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := flowlogtest.ParseAll(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("flow log: %v", err)
	}
	var rejected, decided int
	for _, l := range lines {
		if l.Status != "OK" {
			continue
		}
		decided++
		allowed := l.Protocol == 6 && l.DstPort == soakAllowedTCP || l.Protocol == 17 && l.DstPort == soakAllowedUDP
		if allowed && l.Action == "REJECT" {
			if rejected++; rejected <= 10 {
				t.Errorf("fwd rejected a flow to an always-allowed port: %s %s:%d -> %s:%d", protoName(l.Protocol), l.Src, l.SrcPort, l.Dst, l.DstPort)
			}
		}
	}
	if decided == 0 {
		t.Error("the flow log holds no decided flow")
	}
	t.Logf("flow log: %d flows decided, %d rejected on an always-allowed port", decided, rejected)
}

func protoName(p int) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return fmt.Sprint(p)
}
