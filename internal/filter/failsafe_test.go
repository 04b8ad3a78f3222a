package filter

import (
	"net/netip"
	"strings"
	"testing"
)

const noSSH = `
version: 1
acl:
  ingress:
    - {number: 100, action: deny, proto: tcp, ports: 22, from: [198.18.0.0/24]}
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 80, from: [any]}
`

func TestFailsafe(t *testing.T) {
	tab, err := CompileAt(parse(t, noSSH), may2026)
	if err != nil {
		t.Fatal(err)
	}
	fs := tab.WithFailsafe(Failsafe{Addrs: []netip.Addr{netip.MustParseAddr("::ffff:198.18.0.2"), netip.MustParseAddr("2001:db8::2")}, Ports: []uint16{22, 2222}})
	for _, tc := range []struct {
		k        Key
		failsafe bool // accepted by the failsafe
		accepted bool // by fs
	}{
		{in(6, "198.18.0.2", 22), true, true},    // the admin, over the ACL deny
		{in(6, "2001:db8::2", 2222), true, true}, // the other admin, the other port
		{in(6, "198.18.0.3", 22), false, false},  // not an admin: the ACL decides
		{in(6, "198.18.0.2", 23), false, false},  // not an SSH port
		{in(17, "198.18.0.2", 22), false, false}, // udp
		{out(6, "198.18.0.2", 22), false, true},  // egress: the groups decide (all out)
		{in(6, "198.18.0.3", 80), false, true},   // the groups, as before
	} {
		v := fs.Match(tc.k)
		if v.IsFailsafe() != tc.failsafe || v.Accepted() != tc.accepted {
			t.Errorf("%+v: %+v, want failsafe %v accepted %v", tc.k, v, tc.failsafe, tc.accepted)
		}
		if tc.failsafe {
			if tab.Match(tc.k).Accepted() {
				t.Errorf("%+v: the table without the failsafe accepts it too: the test proves nothing", tc.k)
			}
			if fs.Slot(v) != -1 || fs.Rule(v) != nil || !strings.Contains(fs.Describe(v), "failsafe") {
				t.Errorf("%+v: slot %d, rule %v, %q", tc.k, fs.Slot(v), fs.Rule(v), fs.Describe(v))
			}
		}
	}
	if got := fs.Failsafe(); len(got.Addrs) != 2 || got.Addrs[0] != netip.MustParseAddr("198.18.0.2") {
		t.Errorf("Failsafe() = %v: want unmapped, sorted addresses", got)
	}
	if tab.Failsafe().Addrs != nil {
		t.Errorf("WithFailsafe changed the table it was called on")
	}
	if off := fs.WithFailsafe(Failsafe{}); off.Match(in(6, "198.18.0.2", 22)).Accepted() {
		t.Errorf("an empty failsafe still admits")
	}
	for _, k := range []Key{in(6, "198.18.0.2", 22), in(6, "198.18.0.3", 22), in(6, "198.18.0.3", 80)} {
		if n := testing.AllocsPerRun(1000, func() { fs.Match(k) }); n != 0 {
			t.Errorf("Match(%+v) with a failsafe allocates %v times", k, n)
		}
	}
}
