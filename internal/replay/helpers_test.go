package replay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// Test addresses: the host is 198.18.0.1 / 2001:db8::1, peers elsewhere in
// 198.18.0.0/15 and 2001:db8::/32.
var (
	host4 = netip.MustParseAddr("198.18.0.1")
	host6 = netip.MustParseAddr("2001:db8::1")
)

const webRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: udp, ports: 53, from: [198.18.0.0/24]}
      - {proto: icmp, icmp: {type: 8}, from: [any]}
      - {proto: icmpv6, icmp: {type: 128}, from: [any]}
    egress: []
`

func table(t testing.TB, yaml string) *filter.Table {
	t.Helper()
	f, err := rules.Parse("test.yaml", []byte(yaml), rules.Options{})
	if err != nil {
		t.Fatalf("parse rules: %v", err)
	}
	tb, err := filter.Compile(f)
	if err != nil {
		t.Fatalf("compile rules: %v", err)
	}
	return tb
}

// TCP flag sets for packettest.TCP.
const (
	syn    = packet.SYN
	synack = packet.SYN | packet.ACK
	ack    = packet.ACK
	finack = packet.FIN | packet.ACK
	rst    = packet.RST
)

// ip6ext is an IPv6 TCP segment behind a hop-by-hop and a destination
// options header, then the extension headers in more (a fragment header).
func ip6ext(t testing.TB, src string, sport uint16, dst string, dport uint16, flags uint8, more ...packettest.Ext) []byte {
	t.Helper()
	b, err := packettest.Build(packettest.Spec{
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: ipproto.TCP,
		SrcPort: sport, DstPort: dport, TCPFlags: flags,
		Ext: append([]packettest.Ext{{Type: ipproto.HopByHop}, {Type: ipproto.DestOpts}}, more...),
	})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return b
}

// replayBytes replays capture three ways, through an io.Reader (pcapgo
// reads every record), in place (ReplayBytes), and in place with
// Options.Parallel, fails the test if they differ in anything but
// timing, and returns the in-place result.
func replayBytes(t testing.TB, m Matcher, opts Options, capture []byte) (Summary, error) {
	t.Helper()
	ref, par := opts, opts
	par.Parallel = true
	var refLines, lines, parLines bytes.Buffer
	if opts.Verdicts != nil {
		ref.Verdicts = &refLines
		par.Verdicts = &parLines
		opts.Verdicts = io.MultiWriter(opts.Verdicts, &lines)
	}
	rr := New(m, ref)
	refErr := rr.Replay("test.pcap", bytes.NewReader(capture))
	r := New(m, opts)
	err := r.ReplayBytes("test.pcap", capture)
	sameReplay(t, rr.Summary(), refErr, refLines.String(), r.Summary(), err, lines.String())
	rp := New(m, par)
	parErr := rp.ReplayBytes("test.pcap", capture)
	sameReplay(t, r.Summary(), err, lines.String(), rp.Summary(), parErr, parLines.String())
	// The same capture from a file, read through a buffer.
	file := opts
	var fileLines bytes.Buffer
	if opts.Verdicts != nil {
		file.Verdicts = &fileLines
	}
	path := filepath.Join(t.TempDir(), "test.pcap")
	if werr := os.WriteFile(path, capture, 0o644); werr != nil {
		t.Fatal(werr)
	}
	rf := New(m, file)
	fileErr := rf.ReplayFile(path)
	fileSum := rf.Summary()
	for i := range fileSum.Files {
		fileSum.Files[i].Path = "test.pcap"
	}
	if fileSum.Diff != nil {
		for i := range fileSum.Diff.Changes {
			fileSum.Diff.Changes[i].File = "test.pcap"
		}
	}
	if fileErr != nil {
		fileErr = errors.New(strings.ReplaceAll(fileErr.Error(), path, "test.pcap"))
	}
	sameReplay(t, r.Summary(), err, lines.String(), fileSum, fileErr, strings.ReplaceAll(fileLines.String(), path, "test.pcap"))
	return r.Summary(), err
}

// sameReplay fails the test unless two replays of the same capture agree
// on everything but timing.
func sameReplay(t testing.TB, refSum Summary, refErr error, refLines string, sum Summary, err error, lines string) {
	t.Helper()
	if fmt.Sprint(refErr) != fmt.Sprint(err) {
		t.Errorf("error:\n in place %v\n  reader  %v", err, refErr)
	}
	refSum.Seconds, refSum.PPS, sum.Seconds, sum.PPS = 0, 0, 0, 0
	if !reflect.DeepEqual(refSum, sum) {
		t.Errorf("summary:\n in place %+v\n  reader  %+v", sum, refSum)
	}
	if refLines != lines {
		t.Errorf("verdict lines:\n in place %s\n  reader  %s", lines, refLines)
	}
}

// handshake is the i-th of a run of test connections to 443 on hostS, as
// the allocation tests repeat them: a SYN from peer and the SYN-ACK, at
// i milliseconds, then the frames of more, each given the same time.
func handshake(i int, more ...[]byte) []packettest.Frame {
	sport := uint16(10000 + i)
	at := time.Duration(i) * time.Millisecond
	frames := []packettest.Frame{
		{Data: packettest.Ethernet(packettest.TCP(peer, hostS, sport, 443, syn)), At: at},
		{Data: packettest.Ethernet(packettest.TCP(hostS, peer, 443, sport, synack)), At: at},
	}
	for _, d := range more {
		frames = append(frames, packettest.Frame{Data: d, At: at})
	}
	return frames
}
