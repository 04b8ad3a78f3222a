package packet

import (
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// The real captures are read in place from ../shared/data (from the
// project root); -capture points the test and the benchmark at one's own.
var captureFlag = flag.String("capture", "", "pcap `file` to decode in TestDecodeCaptures and BenchmarkDecodeCapture (default: ../shared/data/pcap/*.pcap)")

func capturePaths(tb testing.TB) []string {
	if *captureFlag != "" {
		return []string{*captureFlag}
	}
	paths, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "data", "pcap", "*.pcap"))
	if len(paths) == 0 {
		tb.Skip("no captures: ../shared/data/pcap (next to the project root) is absent; use -capture FILE")
	}
	return paths
}

// readIPPackets returns the IP packets of a pcap file (Ethernet with
// VLAN tags, raw IP, Linux SLL), starting at the IP header.
func readIPPackets(tb testing.TB, path string) [][]byte {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	var out [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		var etype uint16
		switch r.LinkType() {
		case layers.LinkTypeEthernet:
			if len(data) < 14 {
				continue
			}
			etype, data = binary.BigEndian.Uint16(data[12:14]), data[14:]
			for (etype == 0x8100 || etype == 0x88a8) && len(data) >= 4 {
				etype, data = binary.BigEndian.Uint16(data[2:4]), data[4:]
			}
		case layers.LinkTypeLinuxSLL:
			if len(data) < 16 {
				continue
			}
			etype, data = binary.BigEndian.Uint16(data[14:16]), data[16:]
		case layers.LinkTypeRaw, 12:
			etype = 0x0800
			if len(data) > 0 && data[0]>>4 == 6 {
				etype = 0x86dd
			}
		default:
			tb.Skipf("%s: link type %v not handled here", path, r.LinkType())
		}
		if etype == 0x0800 || etype == 0x86dd {
			out = append(out, data)
		}
	}
}

// TestDecodeCaptures decodes every IP packet of the real captures and
// checks the result against the reference decoder and against gopacket's
// full (slow, allocating) packet decoder.
func TestDecodeCaptures(t *testing.T) {
	for _, path := range capturePaths(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var d Decoder
			var ip, unknown, frags int
			for i, b := range readIPPackets(t, path) {
				var p Packet
				d.Decode(b, &p)
				if ref := refDecode(b); p != ref {
					t.Fatalf("packet %d: Decode and the reference disagree\n got %+v\n ref %+v", i, p, ref)
				}
				checkFast(t, &d, b)
				checkInvariants(t, p)
				if p.Kind != IP {
					unknown++
					continue
				}
				ip++
				if p.Frag != NotFragment {
					frags++
				}
				if err := agreesWithGopacket(b, p); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
			}
			t.Logf("%d IP packets decoded (%d fragments), %d unknown", ip, frags, unknown)
			if ip == 0 {
				t.Errorf("no packet decoded")
			}
		})
	}
}

func agreesWithGopacket(b []byte, p Packet) error {
	first := layers.LayerTypeIPv4
	if p.Version == 6 {
		first = layers.LayerTypeIPv6
	}
	pkt := gopacket.NewPacket(b, first, gopacket.DecodeOptions{Lazy: false, NoCopy: true})
	net := pkt.NetworkLayer()
	if net == nil {
		return errors.New("gopacket finds no network layer")
	}
	src, _ := netip.AddrFromSlice(net.NetworkFlow().Src().Raw())
	dst, _ := netip.AddrFromSlice(net.NetworkFlow().Dst().Raw())
	if src != p.Src || dst != p.Dst {
		return errors.New("addresses differ from gopacket's: " + src.String() + " " + dst.String())
	}
	if p.Frag != NotFragment || !p.HasTransport {
		return nil
	}
	switch l := pkt.TransportLayer().(type) {
	case *layers.TCP:
		if uint16(l.SrcPort) != p.SrcPort || uint16(l.DstPort) != p.DstPort {
			return errors.New("tcp ports differ from gopacket's")
		}
	case *layers.UDP:
		if uint16(l.SrcPort) != p.SrcPort || uint16(l.DstPort) != p.DstPort {
			return errors.New("udp ports differ from gopacket's")
		}
	}
	return nil
}
