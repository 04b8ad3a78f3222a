package conntrack

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"

	"github.com/fwd-project/fwd/internal/netns"
	"golang.org/x/sys/unix"
)

// TestDumpAndDeleteInNamespace opens a TCP connection inside a fresh
// network namespace (conntrack switched on there by an iptables rule
// that uses it), finds its entry in a dump, deletes it, and checks that
// it is gone while another connection's entry stays.
func TestDumpAndDeleteInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("conntrack namespace test needs root; CI=true forbids skipping")
		}
		t.Skip("conntrack namespace test needs root")
	}
	b := make([]byte, 3)
	rand.Read(b)
	ns := "fwdct-" + hex.EncodeToString(b)
	if err := netns.Add(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.Delete(ns) })
	for _, args := range [][]string{{"ip", "link", "set", "lo", "up"}, {"iptables", "-A", "INPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT"}} {
		if out, err := netns.Command(ns, args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	err := netns.Do(ns, func() error {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		ports := map[uint16]bool{}
		for range 2 {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				return err
			}
			defer ln.Close()
			c, err := net.Dial("tcp4", ln.Addr().String())
			if err != nil {
				return err
			}
			conns = append(conns, c)
			ports[uint16(ln.Addr().(*net.TCPAddr).Port)] = true
		}
		c, err := Dial()
		if err != nil {
			return err
		}
		defer c.Close()
		found := func() map[uint16]bool {
			flows, err := c.Dump()
			if err != nil {
				t.Fatal(err)
			}
			m := map[uint16]bool{}
			for _, f := range flows {
				if f.Proto == unix.IPPROTO_TCP && ports[f.DstPort] {
					m[f.DstPort] = true
				}
			}
			return m
		}
		if got := found(); len(got) != 2 {
			t.Fatalf("dump found the entries of ports %v, want both of %v", got, ports)
		}
		var victim uint16
		for p := range ports {
			victim = p
			break
		}
		n, err := c.DeleteMatching(func(f Flow) bool { return f.Proto == unix.IPPROTO_TCP && f.DstPort == victim })
		if err != nil || n != 1 {
			t.Fatalf("DeleteMatching: %d, %v; want 1", n, err)
		}
		if got := found(); got[victim] || len(got) != 1 {
			t.Fatalf("after the delete: entries of ports %v, want only the other of %v", got, ports)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
