package main

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// csum is the one's-complement checksum of b (even length).
func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// TestTemplates: every packet comes from its target's prefix, within
// the benchmark range, to a port of its range, and a TCP SYN's checksum
// holds for the source port the flood writes.
func TestTemplates(t *testing.T) {
	ts := []target{
		{tcp: true, from: netip.MustParsePrefix("198.19.7.0/24"), lo: 80, hi: 90},
		{from: netip.MustParsePrefix("198.19.0.0/16"), lo: 1, hi: 65535},
		{tcp: true, from: netip.MustParsePrefix("198.19.9.0/32"), lo: 443, hi: 443},
	}
	pkts := buildTemplates(ts, netip.MustParseAddr("198.18.0.1"))
	var tcp, udp int
	for i, p := range pkts {
		src := netip.AddrFrom4([4]byte(p.pkt[12:16]))
		port := binary.BigEndian.Uint16(p.pkt[22:])
		ok := false
		for _, tg := range ts {
			if tg.from.Contains(src) && port >= tg.lo && port <= tg.hi && tg.tcp == (p.pkt[9] == 6) {
				ok = true
			}
		}
		if !ok || !netip.MustParsePrefix("198.19.0.0/16").Contains(src) {
			t.Fatalf("packet %d from %v to port %d (protocol %d) hits no target", i, src, port, p.pkt[9])
		}
		if p.pkt[9] != 6 {
			udp++
			continue
		}
		tcp++
		const sport = 4242
		binary.BigEndian.PutUint16(p.pkt[20:], sport)
		s := p.sum + sport
		for s>>16 != 0 {
			s = s&0xffff + s>>16
		}
		binary.BigEndian.PutUint16(p.pkt[36:], ^uint16(s))
		pseudo := append(append([]byte{}, p.pkt[12:20]...), 0, 6, 0, 20)
		if c := csum(append(pseudo, p.pkt[20:40]...)); c != 0 {
			t.Fatalf("packet %d: TCP checksum does not verify (%#x)", i, c)
		}
	}
	if tcp == 0 || udp == 0 {
		t.Errorf("%d tcp, %d udp packets: want both", tcp, udp)
	}
}
