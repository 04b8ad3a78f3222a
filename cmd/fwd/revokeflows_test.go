package main

import (
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/conntrack"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
)

func compileRules(t *testing.T, yaml string) *filter.Table {
	t.Helper()
	f, err := rules.Parse("rules.yaml", []byte(yaml), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := filter.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// TestKeepFlow is revoke's decision table: which established flows
// (conntrack entries, by their original direction) the new rules cut.
func TestKeepFlow(t *testing.T) {
	tab := compileRules(t, `version: 1
acl:
  ingress:
    - {number: 100, action: deny, proto: tcp, ports: 443, from: [198.18.9.0/24]}
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 443, from: [any]}
      - {proto: udp, ports: 53, from: [198.18.0.0/24]}
      - {proto: icmp, icmp: {type: 8}, from: [any]}
      - {proto: icmpv6, icmp: {type: 128}, from: [any]}
    egress:
      - {proto: tcp, ports: 80, to: [any]}
`)
	host := hostView{addrs: map[netip.Addr]bool{
		netip.MustParseAddr("198.19.0.1"):  true,
		netip.MustParseAddr("2001:db8::1"): true,
	}, egress: true}
	open := host
	open.egress = false
	tcp := func(src, dst string, dport uint16) conntrack.Flow {
		return conntrack.Flow{Proto: 6, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: 40000, DstPort: dport}
	}
	udp := func(src, dst string, dport uint16) conntrack.Flow {
		f := tcp(src, dst, dport)
		f.Proto = 17
		return f
	}
	icmp := func(proto uint8, src, dst string, typ uint8) conntrack.Flow {
		return conntrack.Flow{Proto: proto, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), ICMPType: typ, ICMPID: 7}
	}
	for _, tc := range []struct {
		name string
		f    conntrack.Flow
		h    hostView
		keep bool
	}{
		{"ingress to an allowed port", tcp("198.18.0.7", "198.19.0.1", 443), host, true},
		{"ingress to a port no rule allows", tcp("198.18.0.7", "198.19.0.1", 8080), host, false},
		{"ingress from a peer an acl entry denies", tcp("198.18.9.7", "198.19.0.1", 443), host, false},
		{"ingress udp from an allowed peer", udp("198.18.0.7", "198.19.0.1", 53), host, true},
		{"ingress udp from another peer", udp("198.18.1.7", "198.19.0.1", 53), host, false},
		{"ingress ipv6 to an allowed port", tcp("2001:db8::7", "2001:db8::1", 443), host, true},
		{"ingress ipv6 to another port", tcp("2001:db8::7", "2001:db8::1", 22), host, false},
		{"ping allowed", icmp(1, "198.18.0.7", "198.19.0.1", 8), host, true},
		{"timestamp request not allowed", icmp(1, "198.18.0.7", "198.19.0.1", 13), host, false},
		{"ping6 allowed", icmp(58, "2001:db8::7", "2001:db8::1", 128), host, true},
		{"egress to an allowed port", tcp("198.19.0.1", "198.18.0.7", 80), host, true},
		{"egress to another port, egress hooked", tcp("198.19.0.1", "198.18.0.7", 25), host, false},
		{"egress to another port, egress open", tcp("198.19.0.1", "198.18.0.7", 25), open, true},
		{"the host's reply direction is not judged: host port 8080 to a peer's 443", tcp("198.19.0.1", "198.18.0.7", 443), open, true},
		{"loopback", tcp("127.0.0.1", "127.0.0.1", 8080), host, true},
		{"ipv6 loopback", tcp("::1", "::1", 8080), host, true},
		{"the host to itself", tcp("198.19.0.1", "2001:db8::1", 8080), host, true},
		{"the host to its own address", tcp("198.19.0.1", "198.19.0.1", 8080), host, true},
		{"through the host (forwarded)", tcp("198.18.0.7", "198.18.5.5", 8080), host, true},
		{"v4-mapped destination", tcp("::ffff:198.18.0.7", "::ffff:198.19.0.1", 8080), host, false},
	} {
		if got := keepFlow(tab, tc.f, tc.h); got != tc.keep {
			t.Errorf("%s: keep %v, want %v", tc.name, got, tc.keep)
		}
	}
}

// TestKeepFlowPerInterface: with groups per interface, conntrack does
// not say which interface a flow came in on; a flow is kept when the
// groups of some interface of the host allow it.
func TestKeepFlowPerInterface(t *testing.T) {
	tab := compileRules(t, `version: 1
groups:
  - name: all
    ingress:
      - {proto: tcp, ports: 443, from: [any]}
  - name: inside
    interfaces: [eth1]
    ingress:
      - {proto: tcp, ports: 5432, from: [any]}
`)
	tab.Bind([]filter.Link{{Index: 2, Name: "eth0"}, {Index: 3, Name: "eth1"}})
	addrs := map[netip.Addr]bool{netip.MustParseAddr("198.19.0.1"): true}
	pg := conntrack.Flow{Proto: 6, Src: netip.MustParseAddr("198.18.0.7"), Dst: netip.MustParseAddr("198.19.0.1"), SrcPort: 40000, DstPort: 5432}
	if !keepFlow(tab, pg, hostView{addrs: addrs, ifindexes: []uint32{1, 2, 3}}) {
		t.Error("a flow eth1's groups allow was cut")
	}
	if keepFlow(tab, pg, hostView{addrs: addrs, ifindexes: []uint32{1, 2}}) {
		t.Error("a flow no interface's groups allow was kept")
	}
}
