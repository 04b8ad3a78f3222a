package packettest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"
)

// Addresses: 198.18.0.0/15 and 2001:db8::/32 only.
const (
	c4 = "198.18.0.1" // a client
	s4 = "198.18.0.2" // a server
	r4 = "198.18.1.1" // a router
	c6 = "2001:db8::1"
	s6 = "2001:db8::2"
	r6 = "2001:db8:1::1"
)

// TCP flag bits.
const (
	SYN uint8 = 0x02
	ACK uint8 = 0x10
)

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

func udp6Ext(exts ...Ext) []byte {
	return MustBuild(Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.UDP, SrcPort: 5353, DstPort: 53, Payload: make([]byte, 100), Ext: exts})
}

var (
	tcp4SYN  = func() []byte { return TCP(c4, s4, 40000, 443, SYN) }
	udp6DNS  = func() []byte { return UDP(c6, s6, 5353, 53, []byte("query")) }
	extICMP6 = func() []byte {
		return MustBuild(Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.ICMPv6, ICMPType: 128, ICMPRest: 7<<16 | 1,
			Ext: []Ext{{Type: ipproto.HopByHop}, {Type: ipproto.DestOpts, Len: 16}, {Type: ipproto.Routing}}})
	}
)

// sum16 is the ones' complement sum of b, as the internet checksum
// computes it; a correct checksum makes the sum over its span 0xffff.
func sum16(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return sum
}

// checkChecksums verifies the IPv4 header checksum and the transport
// checksum of a whole (unfragmented) packet built here, locating the
// transport header by walking the headers by hand.
func checkChecksums(b []byte) error {
	var src, dst []byte
	var proto uint8
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if s := sum16(0, b[:ihl]); s != 0xffff {
			return fmt.Errorf("ipv4 header checksum: sum %#x", s)
		}
		if int(binary.BigEndian.Uint16(b[2:4])) != len(b) {
			return fmt.Errorf("ipv4 total length %d, packet %d bytes", binary.BigEndian.Uint16(b[2:4]), len(b))
		}
		src, dst, proto, l4 = b[12:16], b[16:20], b[9], b[ihl:]
	case 6:
		if int(binary.BigEndian.Uint16(b[4:6]))+40 != len(b) {
			return fmt.Errorf("ipv6 payload length %d, packet %d bytes", binary.BigEndian.Uint16(b[4:6]), len(b))
		}
		src, dst, proto, l4 = b[8:24], b[24:40], b[6], b[40:]
		for proto == 0 || proto == 43 || proto == 60 || proto == 44 {
			n := (int(l4[1]) + 1) * 8
			if proto == 44 {
				n = 8
			}
			proto, l4 = l4[0], l4[n:]
		}
	}
	pseudo := func() uint32 {
		s := sum16(0, src)
		s = sum16(s, dst)
		return s + uint32(proto) + uint32(len(l4))
	}
	var s uint32
	switch ipproto.Proto(proto) {
	case ipproto.TCP, ipproto.UDP, ipproto.ICMPv6:
		s = sum16(pseudo(), l4)
	case ipproto.ICMP:
		s = sum16(0, l4)
	default:
		return nil
	}
	if s != 0xffff {
		return fmt.Errorf("protocol %d checksum: sum %#x", proto, s)
	}
	return nil
}

func TestBuildChecksums(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"tcp4", TCP(c4, s4, 40000, 443, SYN)},
		{"tcp4 options", MustBuild(Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP, TCPFlags: SYN, TCPOptions: LinuxSYNOptions(),
			IPv4Options: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}, {OptionType: 1}}})},
		{"tcp6", TCP(c6, s6, 40000, 443, SYN|ACK)},
		{"udp4 odd payload", UDP(c4, s4, 1, 2, []byte("odd"))},
		{"udp6", udp6DNS()},
		{"udp6 extensions", udp6Ext(Ext{Type: ipproto.HopByHop, Len: 16}, Ext{Type: ipproto.Routing}, Ext{Type: ipproto.Fragment}, Ext{Type: ipproto.DestOpts})},
		{"echo4", Echo(c4, s4, 1, 2)},
		{"echo6", Echo(c6, s6, 1, 2)},
		{"icmp4 error", ICMPError(r4, c4, 3, 3, udp6DNS())},
		{"icmpv6 error", ICMPError(r6, c6, 1, 4, udp6DNS())},
		{"icmpv6 with extensions", extICMP6()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkChecksums(tc.pkt); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestBuildMatchesGopacket: gopacket's full decoder reads back what Spec
// asked for.
func TestBuildMatchesGopacket(t *testing.T) {
	b := MustBuild(Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.TCP, SrcPort: 40000, DstPort: 443, TCPFlags: SYN | ACK,
		TTL: 7, Payload: []byte("hello"), Ext: []Ext{{Type: ipproto.HopByHop}, {Type: ipproto.DestOpts, Len: 16}}})
	pkt := gopacket.NewPacket(b, layers.LayerTypeIPv6, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	tcp := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip.HopLimit != 7 || !ip.SrcIP.Equal(a(c6).AsSlice()) || !ip.DstIP.Equal(a(s6).AsSlice()) || ip.HopByHop == nil {
		t.Errorf("ipv6 header %+v", ip)
	}
	if pkt.Layer(layers.LayerTypeIPv6Destination) == nil {
		t.Error("no destination options header")
	}
	if tcp.SrcPort != 40000 || tcp.DstPort != 443 || !tcp.SYN || !tcp.ACK || tcp.FIN || string(tcp.Payload) != "hello" {
		t.Errorf("tcp header %+v", tcp)
	}

	b = ICMPError(r4, c4, 11, 0, tcp4SYN())
	pkt = gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
	icmp, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok || icmp.TypeCode != layers.CreateICMPv4TypeCode(11, 0) || !bytes.Equal(icmp.Payload, tcp4SYN()) {
		t.Errorf("icmp error: %v", pkt)
	}
}

func TestFragments4Reassemble(t *testing.T) {
	orig := MustBuild(Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.UDP, SrcPort: 1, DstPort: 2, ID: 99, Payload: bytes.Repeat([]byte("0123456789"), 30)})
	frags := Fragments(orig, 100, 0xabcd)
	if len(frags) != 4 { // 308 bytes in 96-byte pieces
		t.Fatalf("%d fragments, want 4", len(frags))
	}
	defrag := ip4defrag.NewIPv4Defragmenter()
	var whole *layers.IPv4
	for i, f := range frags {
		if err := checkIPv4Header(f); err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		ip := gopacket.NewPacket(f, layers.LayerTypeIPv4, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip.Id != 0xabcd || int(ip.FragOffset)*8 != i*96 || (ip.Flags&layers.IPv4MoreFragments != 0) != (i < 3) {
			t.Errorf("fragment %d: id %#x offset %d flags %v", i, ip.Id, ip.FragOffset, ip.Flags)
		}
		out, err := defrag.DefragIPv4(ip)
		if err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		if out != nil {
			whole = out
		}
	}
	if whole == nil {
		t.Fatal("ip4defrag did not reassemble the fragments")
	}
	if want := orig[20:]; !bytes.Equal(whole.Payload, want) {
		t.Errorf("reassembled payload differs: %d bytes, want %d", len(whole.Payload), len(want))
	}
}

// TestFragments4Options: options without the copied bit stay in the
// first fragment. (gopacket's ip4defrag v1.1.19 assumes 20-byte headers,
// so it cannot reassemble these.)
func TestFragments4Options(t *testing.T) {
	orig := MustBuild(Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.UDP, SrcPort: 1, DstPort: 2, Payload: make([]byte, 100),
		IPv4Options: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}, {OptionType: 7, OptionLength: 3, OptionData: []byte{4}}}})
	var payload []byte
	for i, f := range Fragments(orig, 64, 1) {
		if err := checkIPv4Header(f); err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		ip := gopacket.NewPacket(f, layers.LayerTypeIPv4, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		// Router alert (148) has the copied bit; record route (7) does not.
		wantOpts := 2
		if i > 0 {
			wantOpts = 1
		}
		if n := countOptions(ip.Options); n != wantOpts {
			t.Errorf("fragment %d: %d options, want %d", i, n, wantOpts)
		}
		payload = append(payload, ip.Payload...)
	}
	if !bytes.Equal(payload, orig[28:]) {
		t.Errorf("fragments' payloads do not add up to the packet's")
	}
}

func countOptions(opts []layers.IPv4Option) int {
	n := 0
	for _, o := range opts {
		if o.OptionType > 1 {
			n++
		}
	}
	return n
}

func checkIPv4Header(b []byte) error {
	ihl := int(b[0]&0x0f) * 4
	if s := sum16(0, b[:ihl]); s != 0xffff {
		return fmt.Errorf("header checksum: sum %#x", s)
	}
	if int(binary.BigEndian.Uint16(b[2:4])) != len(b) {
		return fmt.Errorf("total length %d, %d bytes", binary.BigEndian.Uint16(b[2:4]), len(b))
	}
	return nil
}

func TestFragments6Reassemble(t *testing.T) {
	orig := udp6Ext(Ext{Type: ipproto.HopByHop}, Ext{Type: ipproto.Routing, Len: 24}, Ext{Type: ipproto.DestOpts})
	unfrag := 40 + 8 + 24 // fixed header, hop-by-hop, routing
	frags := Fragments(orig, 50, 0x01020304)
	if len(frags) != 3 { // 8 + 108 fragmentable bytes in 48-byte pieces
		t.Fatalf("%d fragments, want 3", len(frags))
	}
	var payload []byte
	for i, f := range frags {
		if int(binary.BigEndian.Uint16(f[4:6]))+40 != len(f) {
			t.Fatalf("fragment %d: payload length %d for %d bytes", i, binary.BigEndian.Uint16(f[4:6]), len(f))
		}
		if !bytes.Equal(f[:4], orig[:4]) || !bytes.Equal(f[6:40], orig[6:40]) {
			t.Fatalf("fragment %d: fixed header differs", i)
		}
		if ipproto.Proto(f[40+8]) != ipproto.Fragment { // the routing header's next header
			t.Fatalf("fragment %d: routing header announces %d, want %d", i, f[40+8], ipproto.Fragment)
		}
		fh := f[unfrag : unfrag+8]
		off, more, id := int(binary.BigEndian.Uint16(fh[2:4])>>3)*8, fh[3]&1 == 1, binary.BigEndian.Uint32(fh[4:8])
		if ipproto.Proto(fh[0]) != ipproto.DestOpts || id != 0x01020304 || off != len(payload) || more != (i < len(frags)-1) {
			t.Fatalf("fragment %d: header next %d off %d more %v id %#x", i, fh[0], off, more, id)
		}
		payload = append(payload, f[unfrag+8:]...)
	}
	if !bytes.Equal(payload, orig[unfrag:]) {
		t.Errorf("reassembled fragmentable part differs")
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
	}{
		{"no addresses", Spec{Proto: ipproto.TCP}},
		{"mixed families", Spec{Src: a(c4), Dst: a(s6), Proto: ipproto.TCP}},
		{"extension header in ipv4", Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.TCP, Ext: []Ext{{Type: ipproto.DestOpts}}}},
		{"ipv4 options in ipv6", Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.TCP, IPv4Options: []layers.IPv4Option{{OptionType: 1}}}},
		{"icmp in ipv6", Spec{Src: a(c6), Dst: a(s6), Proto: ipproto.ICMP}},
		{"icmpv6 in ipv4", Spec{Src: a(c4), Dst: a(s4), Proto: ipproto.ICMPv6}},
		{"extension length", Spec{Src: a(c6), Dst: a(s6), Proto: 59, Ext: []Ext{{Type: ipproto.DestOpts, Len: 12}}}},
		{"extension type", Spec{Src: a(c6), Dst: a(s6), Proto: 59, Ext: []Ext{{Type: 51}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := Build(tc.spec); err == nil {
				t.Errorf("Build = %x, want an error", b)
			}
		})
	}
}

func TestMustBuildPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustBuild did not panic on an invalid Spec")
		}
	}()
	MustBuild(Spec{Src: netip.Addr{}})
}
