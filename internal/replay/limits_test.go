package replay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/packet/packettest"
)

// TestLinkTypeWithoutPackets (issue 16, bug 6): a capture with no
// packet (or none readable) still names its link type in the summary,
// from its header or its interfaces.
func TestLinkTypeWithoutPackets(t *testing.T) {
	tb := table(t, webRules)
	frames := packettest.EthernetFrames(packettest.TCP(peer, hostS, 40000, 443, syn))
	pcap := packettest.Pcap(uint32(LinkSLL2), nil)
	ng := packettest.PcapNG(uint32(LinkEthernet), frames)
	tests := []struct {
		name    string
		capture []byte
		want    string
	}{
		{"pcap header only", pcap, "linux-sll2"},
		{"pcap cut in its first record", append(append([]byte(nil), packettest.Pcap(uint32(LinkRaw), nil)...), 1, 2, 3), "raw"},
		{"pcapng interface, no packet", ng[:ngPacketStart(t, ng)], "ethernet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New(tb, Options{})
			r.Replay("c", bytes.NewReader(tc.capture))
			sum := r.Summary()
			if len(sum.Files) != 1 || strings.Join(sum.Files[0].LinkTypes, "+") == "" {
				t.Fatalf("files %+v, want link type %s", sum.Files, tc.want)
			}
			if got := strings.Join(sum.Files[0].LinkTypes, "+"); got != tc.want {
				t.Errorf("link types %s, want %s", got, tc.want)
			}
		})
	}
}

// ngPacketStart is the offset of the first block after the section
// header and the interface block of a pcapng file from writePcapNG.
func ngPacketStart(t *testing.T, b []byte) int {
	t.Helper()
	shb := int(binary.LittleEndian.Uint32(b[4:8]))
	idb := int(binary.LittleEndian.Uint32(b[shb+4 : shb+8]))
	if binary.LittleEndian.Uint32(b[shb:]) != 1 {
		t.Fatal("no interface block after the section header")
	}
	return shb + idb
}

// TestPcapngInterfaceCap (issue 16, bug 6): a section of more than
// maxNgInterfaces interface blocks stops the capture before gopacket
// holds them all.
func TestPcapngInterfaceCap(t *testing.T) {
	tb := table(t, webRules)
	ng := packettest.PcapNG(uint32(LinkEthernet), packettest.EthernetFrames(packettest.TCP(peer, hostS, 40000, 443, syn)))
	start := ngPacketStart(t, ng)
	shb := int(binary.LittleEndian.Uint32(ng[4:8]))
	idb := ng[shb:start]
	for _, tc := range []struct {
		n    int
		stop bool
	}{{maxNgInterfaces, false}, {maxNgInterfaces + 1, true}} {
		var b bytes.Buffer
		b.Write(ng[:shb])
		for range tc.n {
			b.Write(idb)
		}
		b.Write(ng[start:])
		r := New(tb, Options{})
		err := r.Replay("many.pcapng", bytes.NewReader(b.Bytes()))
		var stop *StopError
		if got := errors.As(err, &stop); got != tc.stop {
			t.Fatalf("%d interfaces: error %v, want a stop: %v", tc.n, err, tc.stop)
		}
		if tc.stop && (!strings.Contains(stop.Err.Error(), "interface blocks") || stop.Offset != int64(shb+maxNgInterfaces*len(idb))) {
			t.Errorf("%d interfaces: stop %+v", tc.n, stop)
		}
		if !tc.stop && r.Summary().Packets != 1 {
			t.Errorf("%d interfaces: %d packets, want 1", tc.n, r.Summary().Packets)
		}
	}
}
