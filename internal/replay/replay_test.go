package replay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/google/gopacket/pcapgo"
)

const (
	peer   = "198.18.1.7"
	hostS  = "198.18.0.1"
	dns    = "198.18.0.9"
	router = "198.18.1.254"
	peer6  = "2001:db8::7"
	host6S = "2001:db8::1"
)

// at places frames at explicit times.
func at(sec int, ipPkt []byte) packettest.Frame {
	return packettest.Frame{Data: packettest.Ethernet(ipPkt), At: time.Duration(sec) * time.Second}
}

func TestReplayReasons(t *testing.T) {
	tb := table(t, webRules)
	reply := packettest.TCP(hostS, peer, 443, 40000, synack)
	trunc := packettest.TCP(peer, hostS, 1, 80, syn)[:10]
	frames := []packettest.Frame{
		at(0, packettest.TCP(peer, hostS, 40000, 443, syn)), // rule
		at(1, reply), // established
		at(2, packettest.TCP(peer, hostS, 40000, 443, ack)),                                          // established
		at(3, packettest.TCP(peer, hostS, 40001, 22, syn)),                                           // no-match
		at(4, packettest.TCP(hostS, peer, 22, 40001, synack)),                                        // no-match: egress []
		at(5, packettest.UDP(dns, hostS, 5353, 53, []byte("q"))),                                     // rule
		at(6, packettest.UDP(hostS, dns, 53, 5353, []byte("a"))),                                     // established
		at(7, packettest.Echo(peer, hostS, 7, 1)),                                                    // rule
		at(8, packettest.EchoReply(hostS, peer, 7, 1)),                                               // established
		at(9, packettest.ICMPError(router, hostS, 3, 3, reply)),                                      // related
		at(10, packettest.ICMPError(router, hostS, 3, 3, packettest.TCP(hostS, peer, 9999, 1, syn))), // no-match
		at(11, packettest.TCP("198.18.1.5", "198.18.1.6", 1, 80, syn)),                               // transit
		{Data: packettest.ARP(), At: 12 * time.Second},                                               // not-ip
		at(13, trunc), // malformed
		at(14, packettest.TCP(peer, hostS, 40000, 443, rst)),        // established, closes
		at(15, packettest.UDP("127.0.0.1", "127.0.0.1", 1, 2, nil)), // loopback
		at(100, packettest.TCP(peer, hostS, 40000, 443, ack)),       // rule: old flow gone
		at(101, packettest.UDP(dns, hostS, 5353, 53, []byte("q"))),  // rule: udp flow timed out
		at(102, packettest.Echo(peer6, host6S, 9, 1)),               // rule
		at(103, packettest.EchoReply(host6S, peer6, 9, 1)),          // established
	}
	want := Reasons{Rule: 6, Established: 6, Related: 1, NoMatch: 3, Malformed: 1, NotIP: 1, Transit: 1, Loopback: 1}
	for _, format := range []string{"pcap", "pcapng"} {
		t.Run(format, func(t *testing.T) {
			capture := packettest.Pcap(uint32(LinkEthernet), frames)
			if format == "pcapng" {
				capture = packettest.PcapNG(uint32(LinkEthernet), frames)
			}
			sum, err := replayBytes(t, tb, Options{Hosts: []netip.Addr{host4, host6}}, capture)
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			if sum.Reasons != want {
				t.Errorf("reasons:\n got %+v\nwant %+v", sum.Reasons, want)
			}
			if sum.Packets != 20 || sum.Accepted != 14 || sum.Dropped != 4 || sum.Transit != 1 || sum.NotIP != 1 || sum.Malformed != 1 {
				t.Errorf("totals: %+v", sum)
			}
			if sum.Flows != 6 || sum.FlowsClosed != 1 || sum.FlowsExpired != 2 || sum.FlowOverflow != 0 {
				t.Errorf("flows: started %d closed %d expired %d overflow %d, want 6 1 2 0",
					sum.Flows, sum.FlowsClosed, sum.FlowsExpired, sum.FlowOverflow)
			}
			if len(sum.Files) != 1 || sum.Files[0].Format != format || !sum.Files[0].Complete || sum.Files[0].Packets != 20 {
				t.Errorf("file stats: %+v", sum.Files)
			}
		})
	}
}

func TestReplayWithoutHosts(t *testing.T) {
	tb := table(t, webRules)
	capture := packettest.Pcap(uint32(LinkEthernet), packettest.EthernetFrames(
		packettest.TCP(peer, hostS, 40000, 443, syn),               // rule: ingress to hostS
		packettest.TCP(hostS, peer, 443, 40000, synack),            // established
		packettest.TCP(peer, hostS, 40001, 22, syn),                // no-match
		packettest.TCP(hostS, peer, 22, 40001, synack),             // no-match: ingress to peer, port 40001
		packettest.UDP("198.18.5.5", dns, 1000, 53, nil),           // no-match: peer outside 198.18.0.0/24
		packettest.UDP("198.18.0.77", "198.18.6.6", 1000, 53, nil), // rule
	))
	sum, err := replayBytes(t, tb, Options{}, capture)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	want := Reasons{Rule: 2, Established: 1, NoMatch: 3}
	if sum.Reasons != want {
		t.Errorf("reasons:\n got %+v\nwant %+v", sum.Reasons, want)
	}
}

// TestLinkTypes replays the same traffic behind every link type, in pcap
// and pcapng.
func TestLinkTypes(t *testing.T) {
	tb := table(t, webRules)
	v4syn := packettest.TCP(peer, hostS, 40000, 443, syn)
	v4ack := packettest.TCP(hostS, peer, 443, 40000, synack)
	v6syn := packettest.TCP(peer6, host6S, 40000, 80, syn)
	cases := []struct {
		name   string
		lt     LinkType
		wrap   func([]byte) []byte
		notIP  []byte // a frame without IP, or nil
		v4, v6 bool
	}{
		{"ethernet", LinkEthernet, func(p []byte) []byte { return packettest.Ethernet(p) }, packettest.ARP(), true, true},
		{"ethernet-802.1q", LinkEthernet, func(p []byte) []byte { return packettest.Ethernet(p, ether8021Q) }, packettest.ARP(), true, true},
		{"ethernet-qinq", LinkEthernet, func(p []byte) []byte { return packettest.Ethernet(p, ether8021AD, ether8021Q) }, packettest.ARP(), true, true},
		{"raw", LinkRaw, func(p []byte) []byte { return p }, []byte{0x00, 1, 2, 3}, true, true},
		{"ipv4", LinkIPv4, func(p []byte) []byte { return p }, nil, true, false},
		{"ipv6", LinkIPv6, func(p []byte) []byte { return p }, nil, false, true},
		{"sll", LinkSLL, func(p []byte) []byte { return packettest.SLL(packettest.EtherTypeOf(p), p) }, packettest.SLL(0x0806, make([]byte, 28)), true, true},
		{"sll2", LinkSLL2, func(p []byte) []byte { return packettest.SLL2(packettest.EtherTypeOf(p), p) }, packettest.SLL2(0x0806, make([]byte, 28)), true, true},
		{"null-le", LinkNull, func(p []byte) []byte { return packettest.Null(af(p, 24), binary.LittleEndian, p) }, packettest.Null(99, binary.LittleEndian, nil), true, true},
		{"null-be", LinkNull, func(p []byte) []byte { return packettest.Null(af(p, 30), binary.BigEndian, p) }, packettest.Null(99, binary.BigEndian, nil), true, true},
		{"loop", LinkLoop, func(p []byte) []byte { return packettest.Null(af(p, 28), binary.BigEndian, p) }, packettest.Null(99, binary.BigEndian, nil), true, true},
	}
	for _, c := range cases {
		for _, format := range []string{"pcap", "pcapng"} {
			t.Run(c.name+"/"+format, func(t *testing.T) {
				var frames []packettest.Frame
				want := Reasons{}
				add := func(data []byte) {
					frames = append(frames, packettest.Frame{Data: data, At: time.Duration(len(frames)) * time.Second})
				}
				if c.v4 {
					add(c.wrap(v4syn))
					add(c.wrap(v4ack))
					want.Rule++
					want.Established++
				}
				if c.v6 {
					add(c.wrap(v6syn))
					want.Rule++
				}
				if c.notIP != nil {
					add(c.notIP)
					want.NotIP++
				}
				capture := packettest.Pcap(uint32(c.lt), frames)
				if format == "pcapng" {
					capture = packettest.PcapNG(uint32(c.lt), frames)
				}
				sum, err := replayBytes(t, tb, Options{Hosts: []netip.Addr{host4, host6}}, capture)
				if err != nil {
					t.Fatalf("replay: %v", err)
				}
				if sum.Reasons != want {
					t.Errorf("reasons:\n got %+v\nwant %+v", sum.Reasons, want)
				}
				if got := sum.Files[0].LinkTypes; len(got) != 1 || got[0] != c.lt.String() {
					t.Errorf("link types %v, want [%s]", got, c.lt)
				}
			})
		}
	}
}

// af is the loopback address family of an IP packet: 2 for IPv4, v6 for IPv6.
func af(p []byte, v6 uint32) uint32 {
	if p[0]>>4 == 6 {
		return v6
	}
	return 2
}

func TestIPv4Fragments(t *testing.T) {
	tb := table(t, webRules)
	f := packettest.Fragments(packettest.UDP(dns, hostS, 5353, 53, bytes.Repeat([]byte{'x'}, 100)), 48, 0)
	g := packettest.Fragments(packettest.UDP("198.18.0.10", hostS, 5353, 53, bytes.Repeat([]byte{'y'}, 100)), 48, 0)
	if len(f) != 3 || len(g) != 3 {
		t.Fatalf("fragments: %d and %d, want 3 and 3", len(f), len(g))
	}
	capture := packettest.Pcap(uint32(LinkEthernet), packettest.EthernetFrames(
		f[1],
		packettest.TCP(peer, hostS, 40001, 22, syn),
		f[2],
		f[0], // completes the datagram
		g[0], // g[1] never comes
		g[2],
	))
	var verdicts bytes.Buffer
	sum, err := replayBytes(t, tb, Options{Hosts: []netip.Addr{host4}, Verdicts: &verdicts}, capture)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	want := Reasons{Rule: 3, NoMatch: 1, Malformed: 2}
	if sum.Reasons != want {
		t.Errorf("reasons:\n got %+v\nwant %+v", sum.Reasons, want)
	}
	if sum.Fragments != (FragStats{Reassembled: 1, Incomplete: 2}) {
		t.Errorf("fragments: %+v", sum.Fragments)
	}
	wantLines := `{"n":1,"verdict":"accept","reason":"rule"}
{"n":2,"verdict":"drop","reason":"no-match"}
{"n":3,"verdict":"accept","reason":"rule"}
{"n":4,"verdict":"accept","reason":"rule"}
{"n":5,"verdict":"drop","reason":"malformed"}
{"n":6,"verdict":"drop","reason":"malformed"}
`
	if verdicts.String() != wantLines {
		t.Errorf("verdict lines:\n%s\nwant:\n%s", verdicts.String(), wantLines)
	}
}

func TestIPv4FragmentTimeout(t *testing.T) {
	tb := table(t, webRules)
	f := packettest.Fragments(packettest.UDP(dns, hostS, 5353, 53, bytes.Repeat([]byte{'x'}, 100)), 48, 0)
	capture := packettest.Pcap(uint32(LinkEthernet), []packettest.Frame{
		at(0, f[0]),
		at(1, f[1]),
		at(40, packettest.TCP(peer, hostS, 40000, 443, syn)), // the datagram expires here
		at(41, f[2]), // too late: starts a new datagram that never completes
	})
	var verdicts bytes.Buffer
	sum, err := replayBytes(t, tb, Options{Hosts: []netip.Addr{host4}, Verdicts: &verdicts}, capture)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if want := (Reasons{Rule: 1, Malformed: 3}); sum.Reasons != want {
		t.Errorf("reasons:\n got %+v\nwant %+v", sum.Reasons, want)
	}
	if sum.Fragments != (FragStats{Incomplete: 3}) {
		t.Errorf("fragments: %+v", sum.Fragments)
	}
	if lines := strings.Count(verdicts.String(), "\n"); lines != 4 {
		t.Errorf("%d verdict lines, want 4:\n%s", lines, verdicts.String())
	}
}

func TestIPv6ExtensionHeaders(t *testing.T) {
	tb := table(t, webRules)
	first := ip6ext(t, "2001:db8::8", 40000, host6S, 443, syn, packettest.Ext{Type: ipproto.Fragment, MoreFragments: true, FragID: 77})
	// Later fragments: what follows their fragment header is data (here
	// bytes shaped as a TCP header), never parsed.
	later := ip6ext(t, "2001:db8::8", 40000, host6S, 443, syn, packettest.Ext{Type: ipproto.Fragment, FragOffset: 3, FragID: 77})
	orphan := ip6ext(t, "2001:db8::8", 40000, host6S, 443, syn, packettest.Ext{Type: ipproto.Fragment, FragOffset: 3, FragID: 78})
	capture := packettest.Pcap(uint32(LinkEthernet), packettest.EthernetFrames(
		ip6ext(t, peer6, 40000, host6S, 443, syn),    // rule
		ip6ext(t, host6S, 443, peer6, 40000, synack), // established
		ip6ext(t, peer6, 40002, host6S, 22, syn),     // no-match
		first,                                        // rule
		later,                                        // rule, as its first fragment
		orphan,                                       // malformed: no first fragment
	))
	sum, err := replayBytes(t, tb, Options{Hosts: []netip.Addr{host6}}, capture)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if want := (Reasons{Rule: 3, Established: 1, NoMatch: 1, Malformed: 1}); sum.Reasons != want {
		t.Errorf("reasons:\n got %+v\nwant %+v", sum.Reasons, want)
	}
}

func TestTruncatedCapture(t *testing.T) {
	tb := table(t, webRules)
	pkts := [][]byte{
		packettest.TCP(peer, hostS, 40000, 443, syn),
		packettest.TCP(hostS, peer, 443, 40000, synack),
		packettest.TCP(peer, hostS, 40000, 443, ack),
		packettest.TCP(peer, hostS, 40000, 443, ack),
		packettest.TCP(peer, hostS, 40000, 443, ack),
	}
	frames := packettest.EthernetFrames(pkts...)
	full := packettest.Pcap(uint32(LinkEthernet), frames)
	rec4 := int64(24)
	for _, f := range frames[:3] {
		rec4 += 16 + int64(len(f.Data))
	}
	tests := []struct {
		name       string
		capture    []byte
		packets    uint64
		stopPacket uint64
		stopOffset int64
	}{
		{"pcap mid-record", full[:rec4+16+5], 3, 4, rec4},
		{"pcap mid-header", full[:rec4+7], 3, 4, rec4},
		{"pcapng mid-block", func() []byte { b := packettest.PcapNG(uint32(LinkEthernet), frames); return b[:len(b)-10] }(), 4, 5, -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(tb, Options{Hosts: []netip.Addr{host4}})
			err := r.Replay("cut.pcap", bytes.NewReader(tt.capture))
			var stop *StopError
			if !errors.As(err, &stop) {
				t.Fatalf("error %v, want a *StopError", err)
			}
			if stop.File != "cut.pcap" || stop.Packet != tt.stopPacket || (tt.stopOffset != -2 && stop.Offset != tt.stopOffset) || stop.Offset < 0 {
				t.Errorf("stop %+v, want packet %d offset %d", stop, tt.stopPacket, tt.stopOffset)
			}
			sum := r.Summary()
			if sum.Packets != tt.packets || sum.Files[0].Complete || sum.Files[0].Stop == nil {
				t.Errorf("packets %d (want %d), file %+v", sum.Packets, tt.packets, sum.Files[0])
			}
			if sum.Reasons.Rule != 1 || sum.Reasons.Established != tt.packets-1 {
				t.Errorf("reasons %+v", sum.Reasons)
			}
		})
	}
	// A complete pcapng read through a plain io.Reader is complete too.
	r := New(tb, Options{})
	if err := r.Replay("whole.pcapng", bytes.NewReader(packettest.PcapNG(uint32(LinkEthernet), frames))); err != nil {
		t.Errorf("complete pcapng: %v", err)
	}
}

func TestCorruptCapture(t *testing.T) {
	tb := table(t, webRules)
	good := packettest.Pcap(uint32(LinkEthernet), packettest.EthernetFrames(packettest.TCP(peer, hostS, 40000, 443, syn)))
	bad := append([]byte(nil), good...)
	rec := make([]byte, 16)
	binary.LittleEndian.PutUint32(rec[8:], 0x7fffffff) // caplen far beyond any snaplen
	binary.LittleEndian.PutUint32(rec[12:], 0x7fffffff)
	bad = append(bad, rec...)
	r := New(tb, Options{})
	err := r.Replay("bad.pcap", bytes.NewReader(bad))
	var stop *StopError
	if !errors.As(err, &stop) || stop.Packet != 2 || stop.Offset != int64(len(good)) {
		t.Fatalf("error %v, want a stop at packet 2 offset %d", err, len(good))
	}
	if sum := r.Summary(); sum.Packets != 1 {
		t.Errorf("packets %d, want 1", sum.Packets)
	}

	// Not a capture at all: an error, and no file counted.
	r = New(tb, Options{})
	err = r.Replay("notes.txt", strings.NewReader("this is not a capture file at all"))
	if err == nil || errors.As(err, &stop) {
		t.Fatalf("error %v, want a plain error", err)
	}
	if sum := r.Summary(); len(sum.Files) != 0 || sum.Packets != 0 {
		t.Errorf("summary after a non-capture: %+v", sum)
	}
}

func TestFlowTableOverflow(t *testing.T) {
	tb := table(t, webRules)
	capture := packettest.Pcap(uint32(LinkEthernet), packettest.EthernetFrames(
		packettest.TCP("198.18.1.1", hostS, 40000, 443, syn),
		packettest.TCP("198.18.1.2", hostS, 40000, 443, syn),
		packettest.TCP("198.18.1.3", hostS, 40000, 443, syn), // table full: not tracked
		packettest.TCP(hostS, "198.18.1.1", 443, 40000, synack),
		packettest.TCP(hostS, "198.18.1.2", 443, 40000, synack),
		packettest.TCP(hostS, "198.18.1.3", 443, 40000, synack), // judged by egress rules: none
	))
	sum, err := replayBytes(t, tb, Options{Hosts: []netip.Addr{host4}, MaxFlows: 2}, capture)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if want := (Reasons{Rule: 3, Established: 2, NoMatch: 1}); sum.Reasons != want {
		t.Errorf("reasons:\n got %+v\nwant %+v", sum.Reasons, want)
	}
	if sum.Flows != 2 || sum.FlowOverflow != 1 || sum.MaxFlows != 2 {
		t.Errorf("flows %d overflow %d max %d, want 2 1 2", sum.Flows, sum.FlowOverflow, sum.MaxFlows)
	}
}

func TestDiff(t *testing.T) {
	oldT := table(t, webRules)
	newT := table(t, strings.Replace(webRules, "ports: [80, 443]", "ports: [80]", 1))
	capture := packettest.Pcap(uint32(LinkEthernet), packettest.EthernetFrames(
		packettest.TCP(peer, hostS, 40000, 443, syn),
		packettest.TCP(hostS, peer, 443, 40000, synack),
		packettest.TCP(peer, hostS, 40000, 443, ack),
		packettest.TCP(peer, hostS, 40003, 80, syn),
		packettest.TCP(hostS, peer, 80, 40003, synack),
	))
	sum, err := replayBytes(t, oldT, Options{Hosts: []netip.Addr{host4}, Diff: newT}, capture)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if sum.Accepted != 5 || sum.Diff == nil || sum.Diff.Accepted != 2 || sum.Diff.Dropped != 3 {
		t.Fatalf("accepted %d, diff %+v", sum.Accepted, sum.Diff)
	}
	want := Change{
		Proto: 6, Src: netip.MustParseAddr(peer), Dst: host4, SrcPort: 40000, DstPort: 443,
		File: "test.pcap", Packet: 1, Time: packettest.Epoch(),
		Old: "accept (rule)", New: "drop (no-match)", Packets: 3,
	}
	if len(sum.Diff.Changes) != 1 || sum.Diff.Changes[0] != want {
		t.Errorf("changes:\n got %+v\nwant [%+v]", sum.Diff.Changes, want)
	}
}

func TestVerdictLines(t *testing.T) {
	tb := table(t, webRules)
	capture := packettest.Pcap(uint32(LinkEthernet), packettest.EthernetFrames(
		packettest.TCP(peer, hostS, 40000, 443, syn),
		packettest.TCP(hostS, peer, 443, 40000, synack),
		packettest.TCP("198.18.1.5", "198.18.1.6", 1, 80, syn),
	))
	var out bytes.Buffer
	r := New(tb, Options{Hosts: []netip.Addr{host4}, Verdicts: &out, LabelVerdicts: true})
	for _, name := range []string{"a.pcap", "b.pcap"} {
		if err := r.Replay(name, bytes.NewReader(capture)); err != nil {
			t.Fatalf("replay %s: %v", name, err)
		}
	}
	want := ""
	for _, name := range []string{"a.pcap", "b.pcap"} {
		want += `{"n":1,"verdict":"accept","reason":"rule","file":"` + name + `"}
{"n":2,"verdict":"accept","reason":"established","file":"` + name + `"}
{"n":3,"verdict":"ignore","reason":"transit","file":"` + name + `"}
`
	}
	if out.String() != want {
		t.Errorf("verdicts:\n%s\nwant:\n%s", out.String(), want)
	}
	// Each capture starts with an empty flow table: b's SYN is a rule
	// accept again, not established.
	if sum := r.Summary(); sum.Reasons.Rule != 2 || sum.Flows != 2 || len(sum.Files) != 2 {
		t.Errorf("summary %+v", sum)
	}
}

// TestNoAllocs: the per-packet path allocates nothing, new flows included
// (within the table's initial size).
func TestNoAllocs(t *testing.T) {
	tb := table(t, webRules)
	r := New(tb, Options{Hosts: []netip.Addr{host4}, Verdicts: io.Discard})
	const n = 500
	var frames [][]byte
	for i := range n {
		sport := uint16(10000 + i)
		frames = append(frames,
			packettest.Ethernet(packettest.TCP(peer, hostS, sport, 443, syn)),               // rule, new flow
			packettest.Ethernet(packettest.TCP(hostS, peer, 443, sport, synack)),            // established
			packettest.Ethernet(packettest.TCP(peer, hostS, sport, 22, syn)),                // no-match
			packettest.Ethernet(packettest.TCP("198.18.1.5", "198.18.1.6", sport, 80, syn)), // transit
			packettest.ARP(),
		)
	}
	ts := packettest.Epoch().UnixNano()
	i := 0
	allocs := testing.AllocsPerRun(len(frames)-1, func() {
		r.packet(uint64(i+1), frames[i%len(frames)], LinkEthernet, ts+int64(i))
		i++
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per packet, want 0", allocs)
	}
	if r.main.reasons[ReasonRule] == 0 || r.main.reasons[ReasonEstablished] == 0 {
		t.Errorf("the frames were not replayed as meant: %v", r.main.reasons)
	}
}

// sharedPcaps lists the real captures in ../shared/data/pcap, or skips.
func sharedPcaps(t testing.TB) []string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "data", "pcap")
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcap"))
	if len(files) == 0 {
		t.Skipf("no real captures in %s (../shared/data is absent): skipping", dir)
	}
	return files
}

// TestSharedCaptures replays the real captures (when present) and checks
// that every packet is read and counted once.
func TestSharedCaptures(t *testing.T) {
	tb := table(t, webRules)
	for _, path := range sharedPcaps(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			r := New(tb, Options{})
			if err := r.ReplayFile(path); err != nil {
				t.Fatalf("replay: %v", err)
			}
			sum := r.Summary()
			if want := countRecords(t, path); sum.Packets != want {
				t.Errorf("replayed %d packets, pcapgo reads %d", sum.Packets, want)
			}
			if sum.Accepted+sum.Dropped+sum.Transit+sum.NotIP != sum.Packets {
				t.Errorf("verdicts do not add up: %+v", sum)
			}
			if strings.Contains(path, "ip-frag") && sum.Fragments.Reassembled == 0 {
				t.Errorf("no datagram reassembled in %s", path)
			}
		})
	}
}

func countRecords(t testing.TB, path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	r.SetSnaplen(maxSnaplen)
	var n uint64
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			return n
		}
		n++
	}
}
