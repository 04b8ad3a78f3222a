package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRoot skips without root, unless CI=true forbids it.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("netns tests need root; CI=true forbids skipping")
		}
		t.Skip("netns tests need root")
	}
}

// newNS creates a namespace of the test's own, deleted when it ends.
func newNS(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if err := Add(name); err != nil {
		t.Fatalf("add: %v", err)
	}
	t.Cleanup(func() {
		if err := Delete(name); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	return name
}

// pair is two namespaces joined by a veth pair eth0 - eth0:
// 198.18.0.2/24 and 2001:db8::2/64 on the client, .1 and ::1 on the
// server.
func pair(t *testing.T) (client, server string) {
	t.Helper()
	client, server = newNS(t, "fwdnc-"), newNS(t, "fwdns-")
	err := AddVeth(
		End{NS: client, Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24"), netip.MustParsePrefix("2001:db8::2/64")}},
		End{NS: server, Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("2001:db8::1/64")}},
	)
	if err != nil {
		t.Fatalf("veth: %v", err)
	}
	return client, server
}

// nsInode is the inode of the network namespace the calling thread is in.
func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func TestDoRunsInTheNamespace(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "fwdnd-")
	want := nsInode(t, Dir+"/"+ns)
	if host := nsInode(t, "/proc/thread-self/ns/net"); host == want {
		t.Fatalf("the test already runs in %s", ns)
	}
	var got uint64
	if err := Do(ns, func() error { got = nsInode(t, "/proc/thread-self/ns/net"); return nil }); err != nil {
		t.Fatalf("do: %v", err)
	}
	if got != want {
		t.Errorf("fn ran in namespace inode %d, want %s's %d", got, ns, want)
	}
	// fn's error comes back as is.
	sentinel := errors.New("from fn")
	if err := Do(ns, func() error { return sentinel }); err != sentinel {
		t.Errorf("do returned %v, want fn's error", err)
	}
	// The calling goroutine's thread is left where it was.
	if host := nsInode(t, "/proc/thread-self/ns/net"); host == want {
		t.Errorf("the caller's thread moved into %s", ns)
	}
}

func TestBadNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "../x"} {
		ran := false
		if err := Do(name, func() error { ran = true; return nil }); err == nil || ran {
			t.Errorf("Do(%q): err %v, ran %v; want an error and fn not run", name, err, ran)
		}
		if err := Add(name); err == nil {
			t.Errorf("Add(%q): no error", name)
		}
		if err := Delete(name); err == nil {
			t.Errorf("Delete(%q): no error", name)
		}
	}
}

func TestDoMissingNamespace(t *testing.T) {
	ran := false
	err := Do("fwd-netns-test-missing", func() error { ran = true; return nil })
	if err == nil || ran || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err %v, ran %v; want a not-exist error and fn not run", err, ran)
	}
}

func TestAddDelete(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "fwdna-")
	if !Exists(ns) {
		t.Fatalf("%s does not exist after Add", ns)
	}
	if err := Add(ns); err == nil {
		t.Errorf("Add of an existing namespace: no error")
	}
	// Loopback is up.
	if err := Do(ns, func() error {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}); err != nil {
		t.Errorf("loopback in %s: %v", ns, err)
	}
	// Delete kills what runs inside.
	sleeper := Command(ns, "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	// ip execs sleep once it has entered the namespace.
	comm := "/proc/" + strconv.Itoa(sleeper.Process.Pid) + "/comm"
	if err := waitFor(func() bool {
		b, _ := os.ReadFile(comm)
		return strings.TrimSpace(string(b)) == "sleep"
	}); err != nil {
		t.Fatalf("sleep did not start: %v", err)
	}
	if err := Delete(ns); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if Exists(ns) {
		t.Errorf("%s exists after Delete", ns)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("sleep 60 exited cleanly, want it killed")
		}
	case <-time.After(10 * time.Second):
		t.Errorf("sleep 60 still runs after Delete")
	}
	if err := Delete(ns); err != nil {
		t.Errorf("delete of a deleted namespace: %v, want nil", err)
	}
}

func TestVethJoinsNamespaces(t *testing.T) {
	requireRoot(t)
	client, server := pair(t)
	for _, addr := range []string{"198.18.0.1:7", "[2001:db8::1]:7"} {
		var ln net.Listener
		if err := Do(server, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
			t.Fatalf("listen %s in the server: %v", addr, err)
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Write([]byte("ok"))
				c.Close()
			}
		}()
		var got []byte
		if err := Do(client, func() error {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			got = make([]byte, 2)
			_, err = c.Read(got)
			return err
		}); err != nil || string(got) != "ok" {
			t.Errorf("client to %s: %q, %v; want ok", addr, got, err)
		}
	}
}

func TestVethRefusesBadInput(t *testing.T) {
	requireRoot(t)
	a, b := newNS(t, "fwdnv-"), newNS(t, "fwdnw-")
	good := netip.MustParsePrefix("198.18.0.1/24")
	tests := []struct {
		name string
		a, b End
	}{
		{"address outside the test ranges", End{NS: a, Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}, End{NS: b, Name: "eth0"}},
		{"ipv6 outside 2001:db8::/32", End{NS: a, Name: "eth0"}, End{NS: b, Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("fd00::1/64")}}},
		{"zero prefix", End{NS: a, Name: "eth0", Addrs: []netip.Prefix{{}}}, End{NS: b, Name: "eth0"}},
		{"no interface name", End{NS: a, Addrs: []netip.Prefix{good}}, End{NS: b, Name: "eth0"}},
		{"interface name too long", End{NS: a, Name: "a-very-long-name0"}, End{NS: b, Name: "eth0"}},
		{"bad namespace", End{NS: "x/y", Name: "eth0"}, End{NS: b, Name: "eth0"}},
		{"missing namespace", End{NS: a, Name: "eth0"}, End{NS: "fwd-netns-test-missing", Name: "eth0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := AddVeth(tt.a, tt.b); err == nil {
				t.Fatalf("no error")
			}
			for _, ns := range []string{a, b} {
				out, err := Command(ns, "ip", "-o", "link", "show").CombinedOutput()
				if err != nil {
					t.Fatalf("ip link in %s: %v %s", ns, err, out)
				}
				if strings.Contains(string(out), "eth0") {
					t.Errorf("%s has an eth0 after a refused AddVeth:\n%s", ns, out)
				}
			}
		})
	}
}

func TestFloodRefusesBadInput(t *testing.T) {
	ok := Flood{Dst: netip.MustParseAddr("198.18.0.1"), Port: 5353, Src: netip.MustParseAddr("198.18.0.100"), Sources: 128, Duration: time.Second}
	if err := ok.check(); err != nil {
		t.Fatalf("the valid flood is refused: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Flood)
	}{
		{"ipv6 destination", func(f *Flood) { f.Dst = netip.MustParseAddr("2001:db8::1") }},
		{"destination outside", func(f *Flood) { f.Dst = netip.MustParseAddr("192.0.2.1") }},
		{"no destination", func(f *Flood) { f.Dst = netip.Addr{} }},
		{"source outside", func(f *Flood) { f.Src = netip.MustParseAddr("10.0.0.1") }},
		{"sources run out of the range", func(f *Flood) { f.Src = netip.MustParseAddr("198.19.255.200"); f.Sources = 100 }},
		{"no sources", func(f *Flood) { f.Sources = 0 }},
		{"too many sources", func(f *Flood) { f.Src = netip.MustParseAddr("198.18.0.0"); f.Sources = 1<<16 + 1 }},
		{"negative payload", func(f *Flood) { f.Payload = -1 }},
		{"payload over one frame", func(f *Flood) { f.Payload = 1473 }},
		{"no duration", func(f *Flood) { f.Duration = 0 }},
		{"duration too long", func(f *Flood) { f.Duration = MaxFloodDuration + time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			tt.edit(&f)
			// Run refuses before entering any namespace.
			n, err := f.Run("fwd-netns-test-missing")
			if err == nil || errors.Is(err, os.ErrNotExist) || n != 0 {
				t.Errorf("Run: %d sent, err %v; want a refusal of the input", n, err)
			}
		})
	}
	// The edges are accepted.
	edge := ok
	edge.Src, edge.Sources, edge.Payload, edge.Duration = netip.MustParseAddr("198.19.0.0"), 1<<16, 1472, MaxFloodDuration
	if err := edge.check(); err != nil {
		t.Errorf("edges refused: %v", err)
	}
}

// TestFloodReachesTheServer floods a namespace without a firewall: every
// packet sent reaches its UDP layer, from a new flow each.
func TestFloodReachesTheServer(t *testing.T) {
	requireRoot(t)
	client, server := pair(t)
	var sink *net.UDPConn
	if err := Do(server, func() error {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("198.18.0.1:5353")))
		sink = c
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	seen := make(chan netip.AddrPort, 256)
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := sink.ReadFromUDPAddrPort(buf)
			if err != nil {
				close(seen)
				return
			}
			if n != 16 {
				from = netip.AddrPort{} // a wrong length
			}
			seen <- from
		}
	}()
	base := Flood{
		Dst: netip.MustParseAddr("198.18.0.1"), Port: 5353,
		Src: netip.MustParseAddr("198.18.0.100"), Sources: 4, Payload: 16,
		Duration: 30 * time.Second,
	}
	// One packet first: the client learns the server's MAC (packets
	// waiting for ARP may be dropped), the sink sees the first flow.
	one := base
	one.Count = 1
	if n, err := one.Run(client); err != nil || n != 1 {
		t.Fatalf("flood of 1: %d sent, %v", n, err)
	}
	if from := <-seen; from != netip.MustParseAddrPort("198.18.0.100:1024") {
		t.Fatalf("first packet from %v, want 198.18.0.100:1024", from)
	}
	before, err := UDPInput(server)
	if err != nil {
		t.Fatal(err)
	}
	const count = 100
	flood := base
	flood.Count = count
	n, err := flood.Run(client)
	if err != nil || n != count {
		t.Fatalf("flood: %d sent, %v; want %d", n, err, count)
	}
	flows := map[netip.AddrPort]bool{}
	for len(flows) < count {
		select {
		case from := <-seen:
			if !from.IsValid() {
				t.Fatalf("a datagram of the wrong length")
			}
			if flows[from] {
				t.Errorf("two packets from %v: want a new flow each", from)
			}
			flows[from] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d datagrams arrived", len(flows), count)
		}
	}
	// Packet i from 198.18.0.100+i%4, port 1024+i/4.
	for i := range count {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i%4)}), uint16(1024+i/4))
		if !flows[a] {
			t.Errorf("no packet from %v", a)
		}
	}
	after, err := UDPInput(server)
	if err != nil {
		t.Fatal(err)
	}
	if after-before != count {
		t.Errorf("the server's UDP layer counted %d datagrams, want %d", after-before, count)
	}
}

// TestFloodStops checks the stop channel and the duration limit.
func TestFloodStops(t *testing.T) {
	requireRoot(t)
	client, _ := pair(t)
	f := Flood{
		Dst: netip.MustParseAddr("198.18.0.1"), Port: 9,
		Src: netip.MustParseAddr("198.18.0.100"), Sources: 128,
		Duration: MaxFloodDuration,
	}
	stop := make(chan struct{})
	close(stop)
	f.Stop = stop
	if n, err := f.Run(client); err != nil || n != 0 {
		t.Errorf("flood stopped before it started: %d sent, %v; want 0", n, err)
	}
	f.Stop = nil
	f.Duration = 50 * time.Millisecond
	done := make(chan error, 1)
	go func() { _, err := f.Run(client); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("flood: %v", err)
		}
	case <-time.After(MaxFloodDuration / 2):
		t.Fatalf("a flood of 50ms still runs")
	}
}

func TestParseUDPInput(t *testing.T) {
	tests := []struct {
		name, in string
		want     uint64
		err      bool
	}{
		{"kernel", "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdp: 45 3 2 46 7\nUdpLite: InDatagrams NoPorts\nUdpLite: 100 100\n", 50, false},
		{"no udp", "Ip: Forwarding\nIp: 1\n", 0, true},
		{"names only", "Udp: InDatagrams NoPorts InErrors\n", 0, true},
		{"short values", "Udp: InDatagrams NoPorts InErrors\nUdp: 1 2\n", 0, true},
		{"missing counter", "Udp: InDatagrams NoPorts OutDatagrams\nUdp: 1 2 3\n", 0, true},
		{"not a number", "Udp: InDatagrams NoPorts InErrors\nUdp: 1 x 3\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUDPInput(strings.NewReader(tt.in))
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(cond func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
