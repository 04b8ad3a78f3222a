package packettest

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func testFrames() []Frame {
	return []Frame{
		{Data: Ethernet(tcp4SYN()), At: 0},
		{Data: Ethernet(udp6DNS()), At: 1500 * time.Millisecond},
		{Data: ARP(), At: 2*time.Second + 123456789},
	}
}

// TestPcapReadBack reads every form of pcap file with pcapgo: the same
// frames, times and link type come back, at the offsets PcapOffsets says.
func TestPcapReadBack(t *testing.T) {
	frames := testFrames()
	for _, tt := range []struct {
		name   string
		format PcapFormat
		res    time.Duration // timestamp resolution
	}{
		{"default", PcapFormat{}, time.Microsecond},
		{"little endian", PcapFormat{Order: binary.LittleEndian}, time.Microsecond},
		{"big endian", PcapFormat{Order: binary.BigEndian}, time.Microsecond},
		{"big endian nano", PcapFormat{Order: binary.BigEndian, Nano: true}, time.Nanosecond},
		{"little endian nano", PcapFormat{Nano: true}, time.Nanosecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.format.File(1, frames)
			r, err := pcapgo.NewReader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if r.LinkType() != layers.LinkTypeEthernet {
				t.Errorf("link type %v", r.LinkType())
			}
			offs := PcapOffsets(frames)
			for i, f := range frames {
				data, ci, err := r.ReadPacketData()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(data, f.Data) {
					t.Errorf("frame %d differs", i)
				}
				if want := Epoch().Add(f.At).Truncate(tt.res); !ci.Timestamp.Equal(want) {
					t.Errorf("frame %d at %v, want %v", i, ci.Timestamp, want)
				}
				if !bytes.Equal(file[offs[i]+PcapRecordHeaderLen:][:len(f.Data)], f.Data) {
					t.Errorf("frame %d is not at offset %d", i, offs[i])
				}
			}
			if _, _, err := r.ReadPacketData(); err != io.EOF {
				t.Errorf("after the frames: %v, want EOF", err)
			}
		})
	}
	if !bytes.Equal(Pcap(1, frames), (PcapFormat{}).File(1, frames)) {
		t.Errorf("Pcap is not the default format's File")
	}
}

// TestPcapLinkType32 checks that a link type above 255 is written whole.
func TestPcapLinkType32(t *testing.T) {
	file := Pcap(276, nil)
	if len(file) != PcapHeaderLen {
		t.Fatalf("empty capture of %d bytes, want %d", len(file), PcapHeaderLen)
	}
	if lt := binary.LittleEndian.Uint32(file[20:]); lt != 276 {
		t.Errorf("link type %d, want 276", lt)
	}
}

func TestPcapNGReadBack(t *testing.T) {
	frames := testFrames()
	r, err := pcapgo.NewNgReader(bytes.NewReader(PcapNG(1, frames)), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Errorf("link type %v", r.LinkType())
	}
	for i, f := range frames {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(data, f.Data) || !ci.Timestamp.Equal(Epoch().Add(f.At)) {
			t.Errorf("frame %d: %d bytes at %v, want %d at %v", i, len(data), ci.Timestamp, len(f.Data), Epoch().Add(f.At))
		}
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Errorf("after the frames: %v, want EOF", err)
	}
}

func TestEthernetFrames(t *testing.T) {
	a, b := tcp4SYN(), udp6DNS()
	fs := EthernetFrames(a, b)
	if len(fs) != 2 || !bytes.Equal(fs[0].Data, Ethernet(a)) || !bytes.Equal(fs[1].Data, Ethernet(b)) || fs[0].At != 0 || fs[1].At != time.Second {
		t.Errorf("frames %+v", fs)
	}
}
