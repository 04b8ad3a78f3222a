package replay

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
)

// FuzzPacket feeds one frame of any supported link type through link
// stripping, decode, reassembly and both flow emulations. It must never
// panic, and every frame must get exactly one verdict once the capture
// ends.
func FuzzPacket(f *testing.F) {
	for _, seed := range [][]byte{
		ether(tcp(f, peer, 40000, hostS, 443, syn)),
		ether(udp(f, dns, 5353, hostS, 53, []byte("q")), ether8021Q),
		ether(icmp4(f, router, hostS, 3, 3, 0, tcp(f, hostS, 443, peer, 40000, synack))),
		ether(ip6ext(f, tcp(f, peer6, 40000, host6S, 443, syn), nil, nil)),
		arpFrame(),
		sll2(etherIPv4, tcp(f, peer, 1, hostS, 80, syn)),
	} {
		f.Add(uint16(LinkEthernet), seed)
	}
	frags := fragment4(f, udp(f, dns, 5353, hostS, 53, bytes.Repeat([]byte{'x'}, 64)), 24)
	f.Add(uint16(LinkRaw), frags[0])
	f.Add(uint16(LinkNull), null(2, binary.BigEndian, frags[1]))
	f.Add(uint16(LinkSLL2), sll2(etherIPv6, icmp6echo(f, peer6, host6S, 128, 1)))
	tb := table(f, webRules)
	f.Fuzz(func(t *testing.T, lt uint16, data []byte) {
		var out bytes.Buffer
		r := New(tb, Options{Hosts: []netip.Addr{host4, host6}, Diff: &filter.Table{}, Verdicts: &out, MaxFlows: 4})
		ts := epoch.UnixNano()
		// The frame twice, then a fragment-completing mix, as one capture.
		r.packet(1, data, LinkType(lt), ts)
		r.packet(2, data, LinkType(lt), ts+1)
		for _, h := range r.frag.expire(0, true) {
			r.resolveHeld(h, ReasonMalformed, ReasonMalformed)
		}
		if err := r.vlog.flush(); err != nil {
			t.Fatal(err)
		}
		sum := r.Summary()
		if sum.Packets != 2 || sum.Accepted+sum.Dropped+sum.Transit+sum.NotIP != 2 {
			t.Fatalf("2 frames counted as %+v", sum)
		}
		if n := bytes.Count(out.Bytes(), []byte("\n")); n != 2 {
			t.Fatalf("%d verdict lines for 2 frames: %s", n, out.String())
		}
	})
}

// FuzzCapture reads arbitrary bytes as a capture file.
func FuzzCapture(f *testing.F) {
	good := writePcap(f, LinkEthernet, ethFrames(tcp(f, peer, 40000, hostS, 443, syn), tcp(f, hostS, 443, peer, 40000, synack)))
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(writePcapNG(f, LinkEthernet, ethFrames(tcp(f, peer, 40000, hostS, 443, syn))))
	f.Add(writePcap(f, LinkSLL2, []frame{{data: sll2(etherIPv4, tcp(f, peer, 1, hostS, 80, syn))}}))
	tb := table(f, webRules)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := New(tb, Options{MaxFlows: 8})
		err := r.Replay("fuzz", bytes.NewReader(data))
		sum := r.Summary()
		if sum.Accepted+sum.Dropped+sum.Transit+sum.NotIP != sum.Packets {
			t.Fatalf("verdicts do not add up: %+v (err %v)", sum, err)
		}
	})
}
