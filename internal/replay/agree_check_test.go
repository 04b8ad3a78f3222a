package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// TestReplayAgreesWithCheck: for what the host passes before fwd sees it
// (loopback, neighbour discovery and MLD) and the packets around it,
// replay's reason for each first packet is check's reason for the same
// connection: the two share kernel's definition.
func TestReplayAgreesWithCheck(t *testing.T) {
	tb := table(t, webRules)
	icmp6 := func(src, dst string, typ uint8, hl uint8) []byte {
		return packettest.MustBuild(packettest.Spec{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
			Proto: ipproto.ICMPv6, ICMPType: typ, TTL: hl})
	}
	ptr := func(n int) *int { return &n }
	tests := []struct {
		pkt    []byte
		q      control.Query
		reason string
	}{
		{packettest.UDP("127.0.0.1", "127.0.0.1", 1, 2, nil),
			control.Query{Dir: "in", Proto: "udp", Src: "127.0.0.1", Dport: ptr(2)}, "loopback"},
		{packettest.TCP("::1", "::1", 40000, 5432, syn),
			control.Query{Dir: "in", Proto: "tcp", Src: "::1", Dport: ptr(5432)}, "loopback"},
		{icmp6(peer6, host6S, 135, 255),
			control.Query{Dir: "in", Proto: "icmpv6", Src: peer6, Type: ptr(135), Code: ptr(0)}, "neighbour-discovery"},
		{icmp6(peer6, host6S, 136, 255),
			control.Query{Dir: "in", Proto: "icmpv6", Src: peer6, Type: ptr(136)}, "neighbour-discovery"},
		{icmp6("fe80::1", host6S, 134, 255),
			control.Query{Dir: "in", Proto: "icmpv6", Src: "fe80::1", Type: ptr(134)}, "neighbour-discovery"},
		{icmp6(host6S, peer6, 143, 1), // egress: the host's MLD report, and egress is []
			control.Query{Dir: "out", Proto: "icmpv6", Dst: peer6, Type: ptr(143)}, "neighbour-discovery"},
		{icmp6(peer6, host6S, 138, 255),
			control.Query{Dir: "in", Proto: "icmpv6", Src: peer6, Type: ptr(138)}, "no-match"},
		{packettest.Echo(peer6, host6S, 9, 1),
			control.Query{Dir: "in", Proto: "icmpv6", Src: peer6, Type: ptr(128), Code: ptr(0)}, "rule"},
		{packettest.TCP(peer, hostS, 40001, 22, syn),
			control.Query{Dir: "in", Proto: "tcp", Src: peer, Dport: ptr(22)}, "no-match"},
	}
	var pkts [][]byte
	for _, tt := range tests {
		pkts = append(pkts, tt.pkt)
	}
	var lines bytes.Buffer
	capture := packettest.Pcap(uint32(LinkEthernet), packettest.EthernetFrames(pkts...))
	if _, err := replayBytes(t, tb, Options{Hosts: []netip.Addr{host4, host6}, Verdicts: &lines}, capture); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&lines)
	for i, tt := range tests {
		if !sc.Scan() {
			t.Fatalf("%d verdict lines, want %d", i, len(tests))
		}
		var v struct{ Verdict, Reason string }
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		a, err := tt.q.Ask()
		if err != nil {
			t.Fatal(err)
		}
		c := control.Answer(tb, a)
		if v.Reason != tt.reason || c.Reason != tt.reason || v.Verdict != c.Verdict {
			t.Errorf("packet %d: replay %s (%s), check %s (%s); want reason %s", i+1, v.Verdict, v.Reason, c.Verdict, c.Reason, tt.reason)
		}
	}
}
