package replay

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/packet/packettest"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestReplayBytesMatchesReader: reading a capture in place gives what
// reading it through pcapgo gives, for every form of pcap, for captures
// cut at every byte and for corrupt records.
func TestReplayBytesMatchesReader(t *testing.T) {
	tb := table(t, webRules)
	frames := []packettest.Frame{
		at(0, packettest.TCP(peer, hostS, 40000, 443, syn)),
		{Data: packettest.Ethernet(packettest.TCP(hostS, peer, 443, 40000, synack)), At: 1500 * time.Millisecond},
		{Data: packettest.ARP(), At: 2 * time.Second},
		{Data: packettest.Ethernet(packettest.UDP(dns, hostS, 5353, 53, []byte("q"))), At: 2*time.Second + 123456789},
		at(3, packettest.UDP(hostS, dns, 53, 5353, nil)),
	}
	le := packettest.PcapFormat{Order: binary.LittleEndian, Nano: false}.File(uint32(LinkEthernet), frames)
	corrupt := func(caplen, origlen uint32) []byte {
		b := append([]byte(nil), le[:24+16+len(frames[0].Data)]...)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, caplen)
		b = binary.LittleEndian.AppendUint32(b, origlen)
		return append(b, make([]byte, 64)...)
	}
	badVersion := append([]byte(nil), le...)
	binary.LittleEndian.PutUint16(badVersion[4:], 3)
	tests := []struct {
		name    string
		capture []byte
	}{
		{"little-endian micro", le},
		{"little-endian nano", packettest.PcapFormat{Order: binary.LittleEndian, Nano: true}.File(uint32(LinkEthernet), frames)},
		{"big-endian micro", packettest.PcapFormat{Order: binary.BigEndian, Nano: false}.File(uint32(LinkEthernet), frames)},
		{"big-endian nano", packettest.PcapFormat{Order: binary.BigEndian, Nano: true}.File(uint32(LinkEthernet), frames)},
		{"sll2 (link type above 255)", packettest.PcapFormat{Order: binary.BigEndian, Nano: false}.File(uint32(LinkSLL2), []packettest.Frame{{Data: packettest.SLL2(etherIPv4, packettest.TCP(peer, hostS, 1, 80, syn))}})},
		{"unsupported link type", packettest.PcapFormat{Order: binary.LittleEndian, Nano: false}.File(uint32(147), frames)},
		{"caplen beyond any snaplen", corrupt(maxSnaplen+1, maxSnaplen+1)},
		{"caplen above origlen", corrupt(60, 59)},
		{"caplen past the end", corrupt(1000, 1000)},
		{"empty record", corrupt(0, 0)[:24+16+len(frames[0].Data)+16]},
		{"bad version", badVersion},
		{"gzip", gzipped(t, le)},
		{"pcapng", packettest.PcapNG(uint32(LinkEthernet), frames)},
		{"not a capture", []byte("this is not a capture file at all")},
		{"empty", nil},
	}
	for i := range len(le) {
		tests = append(tests, struct {
			name    string
			capture []byte
		}{"cut at " + strconv.Itoa(i), le[:i]})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var refLines, lines bytes.Buffer
			ref := New(tb, Options{Verdicts: &refLines})
			refErr := ref.Replay("x.pcap", bytes.NewReader(tt.capture))
			r := New(tb, Options{Verdicts: &lines})
			err := r.ReplayBytes("x.pcap", tt.capture)
			sameReplay(t, ref.Summary(), refErr, refLines.String(), r.Summary(), err, lines.String())
		})
	}
}

// TestReplayBytesSharedCaptures: the real captures give the same results
// read from their files by pcapgo and in place, twice over with the same
// Replayer (the second time reusing its flow table and fragment buffers).
func TestReplayBytesSharedCaptures(t *testing.T) {
	tb := table(t, webRules)
	for _, path := range sharedPcaps(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var refLines, lines bytes.Buffer
			ref := New(tb, Options{Verdicts: &refLines, LabelVerdicts: true})
			r := New(tb, Options{Verdicts: &lines, LabelVerdicts: true})
			var refErr, err2 error
			for range 2 {
				refErr = errors.Join(refErr, ref.ReplayFile(path))
				err2 = errors.Join(err2, r.ReplayBytes(path, data))
			}
			sameReplay(t, ref.Summary(), refErr, refLines.String(), r.Summary(), err2, lines.String())
			if sum := r.Summary(); sum.Packets == 0 || sum.Packets%2 != 0 {
				t.Errorf("%d packets in two passes", sum.Packets)
			}
		})
	}
}

// FuzzReplayBytes: any bytes replay the same in place and through pcapgo.
func FuzzReplayBytes(f *testing.F) {
	frames := packettest.EthernetFrames(packettest.TCP(peer, hostS, 40000, 443, syn), packettest.TCP(hostS, peer, 443, 40000, synack))
	good := packettest.Pcap(uint32(LinkEthernet), frames)
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(packettest.PcapFormat{Order: binary.BigEndian, Nano: true}.File(uint32(LinkEthernet), frames))
	f.Add(packettest.PcapNG(uint32(LinkEthernet), frames))
	frags := packettest.Fragments(packettest.UDP(dns, hostS, 5353, 53, bytes.Repeat([]byte{'x'}, 64)), 24, 0)
	f.Add(packettest.Pcap(uint32(LinkRaw), []packettest.Frame{{Data: frags[1]}, {Data: frags[0]}, {Data: frags[2]}}))
	tb := table(f, webRules)
	f.Fuzz(func(t *testing.T, data []byte) {
		var refLines, lines bytes.Buffer
		ref := New(tb, Options{MaxFlows: 8, Verdicts: &refLines})
		refErr := ref.Replay("fuzz", bytes.NewReader(data))
		r := New(tb, Options{MaxFlows: 8, Verdicts: &lines})
		err := r.ReplayBytes("fuzz", data)
		sameReplay(t, ref.Summary(), refErr, refLines.String(), r.Summary(), err, lines.String())
	})
}

// TestIPv4FragmentsInterleaved replays many fragmented datagrams whose
// fragments arrive shuffled together, so that ip4defrag holds several
// datagrams at once while fragments are recycled: every fragment must get
// its own datagram's verdict, read in place or through pcapgo, and again
// when the same Replayer replays the capture (reusing its fragments).
func TestIPv4FragmentsInterleaved(t *testing.T) {
	tb := table(t, webRules)
	rng := rand.New(rand.NewPCG(3, 4))
	type frag struct {
		data   []byte
		accept bool
	}
	var frags []frag
	var datagrams uint64 // in more than one fragment
	for i := range 100 {
		src := "198.18.0." + strconv.Itoa(100+i)
		dport := uint16(53 + i%2) // 53 is allowed from 198.18.0.0/24, 54 is not
		size, n := 8*(3+rng.IntN(40)), 100+rng.IntN(1400)
		if last := (8 + n) % size; last > 0 && last < 8 {
			n += 8 // ip4defrag rejects a fragment of less than 8 bytes
		}
		payload := bytes.Repeat([]byte{byte(i)}, n)
		fs := packettest.Fragments(packettest.UDP(src, hostS, 5353, dport, payload), size, 0)
		if len(fs) > 1 {
			datagrams++
		}
		for _, f := range fs {
			frags = append(frags, frag{f, dport == 53})
		}
	}
	rng.Shuffle(len(frags), func(i, j int) { frags[i], frags[j] = frags[j], frags[i] })
	var frames []packettest.Frame
	var want strings.Builder
	var accepted, dropped uint64
	for i, f := range frags {
		frames = append(frames, packettest.Frame{Data: packettest.Ethernet(f.data), At: time.Duration(i) * time.Millisecond})
		if frags[i].accept {
			want.WriteString(`{"n":` + strconv.Itoa(i+1) + `,"verdict":"accept","reason":"rule"}` + "\n")
			accepted++
		} else {
			want.WriteString(`{"n":` + strconv.Itoa(i+1) + `,"verdict":"drop","reason":"no-match"}` + "\n")
			dropped++
		}
	}
	capture := packettest.Pcap(uint32(LinkEthernet), frames)
	var lines bytes.Buffer
	sum, err := replayBytes(t, tb, Options{Hosts: []netip.Addr{host4}, Verdicts: &lines}, capture)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if lines.String() != want.String() {
		t.Errorf("verdict lines:\n%s\nwant:\n%s", lines.String(), want.String())
	}
	if sum.Fragments != (FragStats{Reassembled: datagrams}) || sum.Accepted != accepted || sum.Dropped != dropped {
		t.Errorf("fragments %+v, accepted %d, dropped %d; want %d reassembled, %d, %d",
			sum.Fragments, sum.Accepted, sum.Dropped, datagrams, accepted, dropped)
	}
	if datagrams < 80 || len(frags) < 800 {
		t.Fatalf("only %d fragmented datagrams, %d packets", datagrams, len(frags))
	}

	for _, inPlace := range []bool{false, true} {
		lines.Reset()
		r := New(tb, Options{Hosts: []netip.Addr{host4}, Verdicts: &lines})
		for range 3 {
			if inPlace {
				err = r.ReplayBytes("x.pcap", capture)
			} else {
				err = r.Replay("x.pcap", bytes.NewReader(capture))
			}
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
		}
		if lines.String() != strings.Repeat(want.String(), 3) {
			t.Errorf("in place %v: three replays with one Replayer differ from three fresh ones:\n%s", inPlace, lines.String())
		}
	}
}

// TestReplayBytesAllocs: replaying a capture in place allocates a few
// times per capture (the header reader, the file's statistics), never per
// packet: twice the packets (new flows, established, no-match, related
// ICMP errors, IPv6, not-ip), the same allocations.
func TestReplayBytesAllocs(t *testing.T) {
	tb := table(t, webRules)
	capture := func(n int) []byte {
		var frames []packettest.Frame
		for i := range n {
			sport := uint16(10000 + i)
			frames = append(frames, handshake(i,
				packettest.Ethernet(packettest.TCP(peer, hostS, sport, 22, syn)),
				packettest.Ethernet(packettest.ICMPError(router, hostS, 3, 3, packettest.TCP(hostS, peer, 443, sport, synack))),
				packettest.Ethernet(packettest.TCP(peer6, host6S, sport, 443, syn)),
				packettest.ARP(),
			)...)
		}
		return packettest.Pcap(uint32(LinkEthernet), frames)
	}
	allocs := func(c []byte) float64 {
		r := New(tb, Options{Hosts: []netip.Addr{host4, host6}, Verdicts: io.Discard})
		n := testing.AllocsPerRun(20, func() {
			if err := r.ReplayBytes("x.pcap", c); err != nil {
				t.Fatal(err)
			}
		})
		if re := r.Summary().Reasons; re.Rule == 0 || re.Established == 0 || re.Related == 0 || re.NoMatch == 0 || re.NotIP == 0 {
			t.Errorf("the capture was not replayed as meant: %+v", re)
		}
		return n
	}
	small, large := allocs(capture(250)), allocs(capture(500))
	if large > small || large > 12 {
		t.Errorf("%.1f allocations for 1500 packets, %.1f for 3000: want a few, the same", small, large)
	}
}
