package replay

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/packet/packettest"
)

// FuzzPacket feeds one frame of any supported link type through link
// stripping, decode, reassembly and both flow emulations. It must never
// panic, and every frame must get exactly one verdict once the capture
// ends.
func FuzzPacket(f *testing.F) {
	for _, seed := range [][]byte{
		packettest.Ethernet(packettest.TCP(peer, hostS, 40000, 443, syn)),
		packettest.Ethernet(packettest.UDP(dns, hostS, 5353, 53, []byte("q")), ether8021Q),
		packettest.Ethernet(packettest.ICMPError(router, hostS, 3, 3, packettest.TCP(hostS, peer, 443, 40000, synack))),
		packettest.Ethernet(ip6ext(f, peer6, 40000, host6S, 443, syn)),
		packettest.ARP(),
		packettest.SLL2(etherIPv4, packettest.TCP(peer, hostS, 1, 80, syn)),
	} {
		f.Add(uint16(LinkEthernet), seed)
	}
	frags := packettest.Fragments(packettest.UDP(dns, hostS, 5353, 53, bytes.Repeat([]byte{'x'}, 64)), 24, 0)
	f.Add(uint16(LinkRaw), frags[0])
	f.Add(uint16(LinkNull), packettest.Null(2, binary.BigEndian, frags[1]))
	f.Add(uint16(LinkSLL2), packettest.SLL2(etherIPv6, packettest.Echo(peer6, host6S, 1, 1)))
	tb := table(f, webRules)
	f.Fuzz(func(t *testing.T, lt uint16, data []byte) {
		var out bytes.Buffer
		r := New(tb, Options{Hosts: []netip.Addr{host4, host6}, Diff: &filter.Table{}, Verdicts: &out, MaxFlows: 4})
		ts := packettest.Epoch().UnixNano()
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
	good := packettest.Pcap(uint32(LinkEthernet), packettest.EthernetFrames(packettest.TCP(peer, hostS, 40000, 443, syn), packettest.TCP(hostS, peer, 443, 40000, synack)))
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(packettest.PcapNG(uint32(LinkEthernet), packettest.EthernetFrames(packettest.TCP(peer, hostS, 40000, 443, syn))))
	f.Add(packettest.Pcap(uint32(LinkSLL2), []packettest.Frame{{Data: packettest.SLL2(etherIPv4, packettest.TCP(peer, hostS, 1, 80, syn))}}))
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
