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

	"github.com/google/gopacket/layers"
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
func at(sec int, ipPkt []byte) frame {
	return frame{data: ether(ipPkt), at: time.Duration(sec) * time.Second}
}

func TestReplayReasons(t *testing.T) {
	tb := table(t, webRules)
	reply := tcp(t, hostS, 443, peer, 40000, synack)
	trunc := tcp(t, peer, 1, hostS, 80, syn)[:10]
	frames := []frame{
		at(0, tcp(t, peer, 40000, hostS, 443, syn)), // rule
		at(1, reply), // established
		at(2, tcp(t, peer, 40000, hostS, 443, ack)),                                 // established
		at(3, tcp(t, peer, 40001, hostS, 22, syn)),                                  // no-match
		at(4, tcp(t, hostS, 22, peer, 40001, synack)),                               // no-match: egress []
		at(5, udp(t, dns, 5353, hostS, 53, []byte("q"))),                            // rule
		at(6, udp(t, hostS, 53, dns, 5353, []byte("a"))),                            // established
		at(7, icmp4(t, peer, hostS, 8, 0, 7, nil)),                                  // rule
		at(8, icmp4(t, hostS, peer, 0, 0, 7, nil)),                                  // established
		at(9, icmp4(t, router, hostS, 3, 3, 0, reply)),                              // related
		at(10, icmp4(t, router, hostS, 3, 3, 0, tcp(t, hostS, 9999, peer, 1, syn))), // no-match
		at(11, tcp(t, "198.18.1.5", 1, "198.18.1.6", 80, syn)),                      // transit
		{data: arpFrame(), at: 12 * time.Second},                                    // not-ip
		at(13, trunc),                                                               // malformed
		at(14, tcp(t, peer, 40000, hostS, 443, rst)),                                // established, closes
		at(15, udp(t, "127.0.0.1", 1, "127.0.0.1", 2, nil)),                         // loopback
		at(100, tcp(t, peer, 40000, hostS, 443, ack)),                               // rule: old flow gone
		at(101, udp(t, dns, 5353, hostS, 53, []byte("q"))),                          // rule: udp flow timed out
		at(102, icmp6echo(t, peer6, host6S, 128, 9)),                                // rule
		at(103, icmp6echo(t, host6S, peer6, 129, 9)),                                // established
	}
	want := Reasons{Rule: 6, Established: 6, Related: 1, NoMatch: 3, Malformed: 1, NotIP: 1, Transit: 1, Loopback: 1}
	for _, format := range []string{"pcap", "pcapng"} {
		t.Run(format, func(t *testing.T) {
			capture := writePcap(t, LinkEthernet, frames)
			if format == "pcapng" {
				capture = writePcapNG(t, LinkEthernet, frames)
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
	capture := writePcap(t, LinkEthernet, ethFrames(
		tcp(t, peer, 40000, hostS, 443, syn),               // rule: ingress to hostS
		tcp(t, hostS, 443, peer, 40000, synack),            // established
		tcp(t, peer, 40001, hostS, 22, syn),                // no-match
		tcp(t, hostS, 22, peer, 40001, synack),             // no-match: ingress to peer, port 40001
		udp(t, "198.18.5.5", 1000, dns, 53, nil),           // no-match: peer outside 198.18.0.0/24
		udp(t, "198.18.0.77", 1000, "198.18.6.6", 53, nil), // rule
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
	v4syn := tcp(t, peer, 40000, hostS, 443, syn)
	v4ack := tcp(t, hostS, 443, peer, 40000, synack)
	v6syn := tcp(t, peer6, 40000, host6S, 80, syn)
	cases := []struct {
		name   string
		lt     LinkType
		wrap   func([]byte) []byte
		notIP  []byte // a frame without IP, or nil
		v4, v6 bool
	}{
		{"ethernet", LinkEthernet, func(p []byte) []byte { return ether(p) }, arpFrame(), true, true},
		{"ethernet-802.1q", LinkEthernet, func(p []byte) []byte { return ether(p, ether8021Q) }, arpFrame(), true, true},
		{"ethernet-qinq", LinkEthernet, func(p []byte) []byte { return ether(p, ether8021AD, ether8021Q) }, arpFrame(), true, true},
		{"raw", LinkRaw, func(p []byte) []byte { return p }, []byte{0x00, 1, 2, 3}, true, true},
		{"ipv4", LinkIPv4, func(p []byte) []byte { return p }, nil, true, false},
		{"ipv6", LinkIPv6, func(p []byte) []byte { return p }, nil, false, true},
		{"sll", LinkSLL, func(p []byte) []byte { return sll(etherTypeOf(p), p) }, sll(0x0806, make([]byte, 28)), true, true},
		{"sll2", LinkSLL2, func(p []byte) []byte { return sll2(etherTypeOf(p), p) }, sll2(0x0806, make([]byte, 28)), true, true},
		{"null-le", LinkNull, func(p []byte) []byte { return null(af(p, 24), binary.LittleEndian, p) }, null(99, binary.LittleEndian, nil), true, true},
		{"null-be", LinkNull, func(p []byte) []byte { return null(af(p, 30), binary.BigEndian, p) }, null(99, binary.BigEndian, nil), true, true},
		{"loop", LinkLoop, func(p []byte) []byte { return null(af(p, 28), binary.BigEndian, p) }, null(99, binary.BigEndian, nil), true, true},
	}
	for _, c := range cases {
		for _, format := range []string{"pcap", "pcapng"} {
			t.Run(c.name+"/"+format, func(t *testing.T) {
				var frames []frame
				want := Reasons{}
				add := func(data []byte) {
					frames = append(frames, frame{data: data, at: time.Duration(len(frames)) * time.Second})
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
				capture := writePcap(t, c.lt, frames)
				if format == "pcapng" {
					capture = writePcapNG(t, c.lt, frames)
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
	f := fragment4(t, udp(t, dns, 5353, hostS, 53, bytes.Repeat([]byte{'x'}, 100)), 48)
	g := fragment4(t, udp(t, "198.18.0.10", 5353, hostS, 53, bytes.Repeat([]byte{'y'}, 100)), 48)
	if len(f) != 3 || len(g) != 3 {
		t.Fatalf("fragments: %d and %d, want 3 and 3", len(f), len(g))
	}
	capture := writePcap(t, LinkEthernet, ethFrames(
		f[1],
		tcp(t, peer, 40001, hostS, 22, syn),
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
	f := fragment4(t, udp(t, dns, 5353, hostS, 53, bytes.Repeat([]byte{'x'}, 100)), 48)
	capture := writePcap(t, LinkEthernet, []frame{
		at(0, f[0]),
		at(1, f[1]),
		at(40, tcp(t, peer, 40000, hostS, 443, syn)), // the datagram expires here
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
	first := ip6ext(t, tcp(t, "2001:db8::8", 40000, host6S, 443, syn), &layers.IPv6Fragment{MoreFragments: true, Identification: 77}, nil)
	later := ip6ext(t, tcp(t, "2001:db8::8", 40000, host6S, 443, syn), &layers.IPv6Fragment{FragmentOffset: 3, Identification: 77}, make([]byte, 16))
	orphan := ip6ext(t, tcp(t, "2001:db8::8", 40000, host6S, 443, syn), &layers.IPv6Fragment{FragmentOffset: 3, Identification: 78}, make([]byte, 16))
	capture := writePcap(t, LinkEthernet, ethFrames(
		ip6ext(t, tcp(t, peer6, 40000, host6S, 443, syn), nil, nil),    // rule
		ip6ext(t, tcp(t, host6S, 443, peer6, 40000, synack), nil, nil), // established
		ip6ext(t, tcp(t, peer6, 40002, host6S, 22, syn), nil, nil),     // no-match
		first,  // rule
		later,  // rule, as its first fragment
		orphan, // malformed: no first fragment
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
		tcp(t, peer, 40000, hostS, 443, syn),
		tcp(t, hostS, 443, peer, 40000, synack),
		tcp(t, peer, 40000, hostS, 443, ack),
		tcp(t, peer, 40000, hostS, 443, ack),
		tcp(t, peer, 40000, hostS, 443, ack),
	}
	frames := ethFrames(pkts...)
	full := writePcap(t, LinkEthernet, frames)
	rec4 := int64(24)
	for _, f := range frames[:3] {
		rec4 += 16 + int64(len(f.data))
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
		{"pcapng mid-block", func() []byte { b := writePcapNG(t, LinkEthernet, frames); return b[:len(b)-10] }(), 4, 5, -2},
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
	if err := r.Replay("whole.pcapng", bytes.NewReader(writePcapNG(t, LinkEthernet, frames))); err != nil {
		t.Errorf("complete pcapng: %v", err)
	}
}

func TestCorruptCapture(t *testing.T) {
	tb := table(t, webRules)
	good := writePcap(t, LinkEthernet, ethFrames(tcp(t, peer, 40000, hostS, 443, syn)))
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
	capture := writePcap(t, LinkEthernet, ethFrames(
		tcp(t, "198.18.1.1", 40000, hostS, 443, syn),
		tcp(t, "198.18.1.2", 40000, hostS, 443, syn),
		tcp(t, "198.18.1.3", 40000, hostS, 443, syn), // table full: not tracked
		tcp(t, hostS, 443, "198.18.1.1", 40000, synack),
		tcp(t, hostS, 443, "198.18.1.2", 40000, synack),
		tcp(t, hostS, 443, "198.18.1.3", 40000, synack), // judged by egress rules: none
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
	capture := writePcap(t, LinkEthernet, ethFrames(
		tcp(t, peer, 40000, hostS, 443, syn),
		tcp(t, hostS, 443, peer, 40000, synack),
		tcp(t, peer, 40000, hostS, 443, ack),
		tcp(t, peer, 40003, hostS, 80, syn),
		tcp(t, hostS, 80, peer, 40003, synack),
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
		File: "test.pcap", Packet: 1, Time: epoch,
		Old: "accept (rule)", New: "drop (no-match)", Packets: 3,
	}
	if len(sum.Diff.Changes) != 1 || sum.Diff.Changes[0] != want {
		t.Errorf("changes:\n got %+v\nwant [%+v]", sum.Diff.Changes, want)
	}
}

func TestVerdictLines(t *testing.T) {
	tb := table(t, webRules)
	capture := writePcap(t, LinkEthernet, ethFrames(
		tcp(t, peer, 40000, hostS, 443, syn),
		tcp(t, hostS, 443, peer, 40000, synack),
		tcp(t, "198.18.1.5", 1, "198.18.1.6", 80, syn),
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
			ether(tcp(t, peer, sport, hostS, 443, syn)),               // rule, new flow
			ether(tcp(t, hostS, 443, peer, sport, synack)),            // established
			ether(tcp(t, peer, sport, hostS, 22, syn)),                // no-match
			ether(tcp(t, "198.18.1.5", sport, "198.18.1.6", 80, syn)), // transit
			arpFrame(),
		)
	}
	ts := epoch.UnixNano()
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
