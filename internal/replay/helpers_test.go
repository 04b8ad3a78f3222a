package replay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
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

func ip(s string) net.IP { return net.IP(netip.MustParseAddr(s).AsSlice()) }

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func netLayer(src, dst string, proto layers.IPProtocol) gopacket.NetworkLayer {
	if netip.MustParseAddr(src).Is4() {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: ip(src), DstIP: ip(dst)}
	}
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: ip(src), DstIP: ip(dst)}
}

// TCP flag sets for tcp().
const (
	syn    = "S"
	synack = "SA"
	ack    = "A"
	finack = "FA"
	rst    = "R"
)

// tcp is an IP packet (no link header) with a TCP segment.
func tcp(t testing.TB, src string, sport uint16, dst string, dport uint16, flags string) []byte {
	t.Helper()
	n := netLayer(src, dst, layers.IPProtocolTCP)
	seg := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Window: 1024}
	for _, f := range flags {
		switch f {
		case 'S':
			seg.SYN = true
		case 'A':
			seg.ACK = true
		case 'F':
			seg.FIN = true
		case 'R':
			seg.RST = true
		}
	}
	seg.SetNetworkLayerForChecksum(n)
	return serialize(t, n.(gopacket.SerializableLayer), seg)
}

func udp(t testing.TB, src string, sport uint16, dst string, dport uint16, payload []byte) []byte {
	t.Helper()
	n := netLayer(src, dst, layers.IPProtocolUDP)
	d := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	d.SetNetworkLayerForChecksum(n)
	return serialize(t, n.(gopacket.SerializableLayer), d, gopacket.Payload(payload))
}

// icmp4 is an ICMP message; quote (an IP packet) is appended for errors.
func icmp4(t testing.TB, src, dst string, typ, code uint8, id uint16, quote []byte) []byte {
	t.Helper()
	return serialize(t, netLayer(src, dst, layers.IPProtocolICMPv4).(gopacket.SerializableLayer),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Id: id, Seq: 1}, gopacket.Payload(quote))
}

func icmp6echo(t testing.TB, src, dst string, typ uint8, id uint16) []byte {
	t.Helper()
	n := netLayer(src, dst, layers.IPProtocolICMPv6)
	m := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	m.SetNetworkLayerForChecksum(n)
	body := []byte{byte(id >> 8), byte(id), 0, 1}
	return serialize(t, n.(gopacket.SerializableLayer), m, gopacket.Payload(body))
}

// fragment4 splits an IPv4 packet into fragments with payloads of size
// bytes (a multiple of 8), in order.
func fragment4(t testing.TB, pkt []byte, size int) [][]byte {
	t.Helper()
	var in layers.IPv4
	if err := in.DecodeFromBytes(pkt, gopacket.NilDecodeFeedback); err != nil {
		t.Fatalf("decode packet to fragment: %v", err)
	}
	payload := in.Payload
	var out [][]byte
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		h := in
		h.Options, h.Padding = nil, nil
		h.FragOffset = uint16(off / 8)
		h.Flags = 0
		if end < len(payload) {
			h.Flags = layers.IPv4MoreFragments
		}
		out = append(out, serialize(t, &h, gopacket.Payload(payload[off:end])))
	}
	return out
}

// ip6ext is an IPv6 packet with a hop-by-hop and a destination options
// header in front of the TCP segment of a packet tcp() built, and, when
// frag is not nil, a fragment header after them.
func ip6ext(t testing.TB, plain []byte, frag *layers.IPv6Fragment, body []byte) []byte {
	t.Helper()
	var v6 layers.IPv6
	if err := v6.DecodeFromBytes(plain, gopacket.NilDecodeFeedback); err != nil {
		t.Fatalf("decode ipv6: %v", err)
	}
	if body == nil {
		body = v6.Payload
	}
	proto := byte(v6.NextHeader)
	var ext []byte
	ext = append(ext, 60, 0, 1, 4, 0, 0, 0, 0) // hop-by-hop: PadN, then destination options
	next := proto
	if frag != nil {
		next = 44
	}
	ext = append(ext, next, 0, 1, 4, 0, 0, 0, 0) // destination options: PadN
	if frag != nil {
		fo := frag.FragmentOffset << 3
		if frag.MoreFragments {
			fo |= 1
		}
		ext = append(ext, proto, 0, byte(fo>>8), byte(fo), 0, 0, 0, 0)
		binary.BigEndian.PutUint32(ext[len(ext)-4:], frag.Identification)
	}
	out := append([]byte(nil), plain[:40]...)
	out[6] = 0 // hop-by-hop first
	out = append(out, ext...)
	out = append(out, body...)
	binary.BigEndian.PutUint16(out[4:6], uint16(len(out)-40))
	return out
}

// Link-layer wrappers.

func ether(ipPkt []byte, tags ...uint16) []byte {
	b := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
	for _, tpid := range tags {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, 100)
	}
	et := uint16(etherIPv4)
	if len(ipPkt) > 0 && ipPkt[0]>>4 == 6 {
		et = etherIPv6
	}
	b = binary.BigEndian.AppendUint16(b, et)
	return append(b, ipPkt...)
}

func arpFrame() []byte {
	b := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06}
	return append(b, make([]byte, 28)...)
}

func sll(proto uint16, ipPkt []byte) []byte {
	b := []byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0}
	b = binary.BigEndian.AppendUint16(b, proto)
	return append(b, ipPkt...)
}

func sll2(proto uint16, ipPkt []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, proto)
	b = append(b, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0)
	return append(b, ipPkt...)
}

func null(af uint32, order binary.AppendByteOrder, ipPkt []byte) []byte {
	b := order.AppendUint32(nil, af)
	return append(b, ipPkt...)
}

func etherTypeOf(ipPkt []byte) uint16 {
	if ipPkt[0]>>4 == 6 {
		return etherIPv6
	}
	return etherIPv4
}

// frame is one captured frame.
type frame struct {
	data []byte
	at   time.Duration // since the capture's start
}

var epoch = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// writePcap writes a pcap file by hand-made header (any 32-bit link type)
// and pcapgo's record writer.
func writePcap(t testing.TB, lt LinkType, frames []frame) []byte {
	t.Helper()
	var b bytes.Buffer
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xA1B2C3D4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], uint32(lt))
	b.Write(h)
	w := pcapgo.NewWriter(&b)
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: epoch.Add(f.at), CaptureLength: len(f.data), Length: len(f.data)}
		if err := w.WritePacket(ci, f.data); err != nil {
			t.Fatalf("write pcap: %v", err)
		}
	}
	return b.Bytes()
}

// writePcapNG writes a pcapng file with pcapgo (its link type field is 8
// bits wide there: SLL2 is written as 276&0xff, as gopacket reads it).
func writePcapNG(t testing.TB, lt LinkType, frames []frame) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := pcapgo.NewNgWriter(&b, layers.LinkType(lt&0xff))
	if err != nil {
		t.Fatalf("pcapng writer: %v", err)
	}
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: epoch.Add(f.at), CaptureLength: len(f.data), Length: len(f.data), InterfaceIndex: 0}
		if err := w.WritePacket(ci, f.data); err != nil {
			t.Fatalf("write pcapng: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("flush pcapng: %v", err)
	}
	return b.Bytes()
}

// ethFrames wraps IP packets in Ethernet, one per second.
func ethFrames(pkts ...[]byte) []frame {
	fs := make([]frame, len(pkts))
	for i, p := range pkts {
		fs[i] = frame{data: ether(p), at: time.Duration(i) * time.Second}
	}
	return fs
}

// replayBytes replays capture both ways, through an io.Reader (pcapgo
// reads every record) and in place (ReplayBytes), fails the test if the
// two differ in anything but timing, and returns the in-place result.
func replayBytes(t testing.TB, m Matcher, opts Options, capture []byte) (Summary, error) {
	t.Helper()
	ref := opts
	var refLines, lines bytes.Buffer
	if opts.Verdicts != nil {
		ref.Verdicts = &refLines
		opts.Verdicts = io.MultiWriter(opts.Verdicts, &lines)
	}
	rr := New(m, ref)
	refErr := rr.Replay("test.pcap", bytes.NewReader(capture))
	r := New(m, opts)
	err := r.ReplayBytes("test.pcap", capture)
	sameReplay(t, rr.Summary(), refErr, refLines.String(), r.Summary(), err, lines.String())
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
