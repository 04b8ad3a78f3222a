package packettest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// This file writes capture files, pcap and pcapng, from frames (link-layer
// bytes, see link.go). They are for tests: the helpers panic on bad input.

// Frame is one captured frame.
type Frame struct {
	Data []byte
	At   time.Duration // since the capture's start, Epoch
}

// Epoch returns the time every capture written here starts at:
// 2024-03-01 12:00:00 UTC.
func Epoch() time.Time { return time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC) }

// EthernetFrames wraps IP packets in Ethernet (see Ethernet), one a
// second from Epoch.
func EthernetFrames(pkts ...[]byte) []Frame {
	fs := make([]Frame, len(pkts))
	for i, p := range pkts {
		fs[i] = Frame{Data: Ethernet(p), At: time.Duration(i) * time.Second}
	}
	return fs
}

// PcapFormat is the form of a pcap file: its byte order (nil means
// little endian) and whether timestamps are in nanoseconds (magic
// a1b23c4d) or microseconds (a1b2c3d4).
type PcapFormat struct {
	Order binary.AppendByteOrder
	Nano  bool
}

// PcapHeaderLen and PcapRecordHeaderLen are the sizes of a pcap file's
// header and of each record's header.
const (
	PcapHeaderLen       = 24
	PcapRecordHeaderLen = 16
)

// Pcap returns a pcap file, version 2.4, little endian, microsecond
// timestamps, snapshot length 65535, of link type lt (a LINKTYPE_ number:
// the field is 32 bits wide, so SLL2's 276 is written as is), holding
// frames.
func Pcap(lt uint32, frames []Frame) []byte {
	return PcapFormat{}.File(lt, frames)
}

// File returns a pcap file of this format, as Pcap describes.
func (p PcapFormat) File(lt uint32, frames []Frame) []byte {
	order := p.Order
	if order == nil {
		order = binary.LittleEndian
	}
	magic := uint32(0xA1B2C3D4)
	if p.Nano {
		magic = 0xA1B23C4D
	}
	b := order.AppendUint32(nil, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = order.AppendUint32(b, 0) // time zone
	b = order.AppendUint32(b, 0) // timestamp accuracy
	b = order.AppendUint32(b, 65535)
	b = order.AppendUint32(b, lt)
	for _, f := range frames {
		ts := Epoch().Add(f.At)
		frac := uint32(ts.Nanosecond() / 1000)
		if p.Nano {
			frac = uint32(ts.Nanosecond())
		}
		b = order.AppendUint32(b, uint32(ts.Unix()))
		b = order.AppendUint32(b, frac)
		b = order.AppendUint32(b, uint32(len(f.Data)))
		b = order.AppendUint32(b, uint32(len(f.Data)))
		b = append(b, f.Data...)
	}
	return b
}

// PcapOffsets returns where each frame's record starts in the pcap file
// that Pcap or PcapFormat.File writes for frames.
func PcapOffsets(frames []Frame) []int {
	offs := make([]int, len(frames))
	off := PcapHeaderLen
	for i, f := range frames {
		offs[i] = off
		off += PcapRecordHeaderLen + len(f.Data)
	}
	return offs
}

// PcapNG returns a pcapng file written by gopacket's pcapgo: one section,
// one interface of link type lt, frames as enhanced packet blocks with
// nanosecond timestamps. pcapgo
// (gopacket 1.1.19) holds link types in 8 bits: lt is written as lt&0xff,
// so SLL2 (276) becomes 20, as gopacket would read it back.
func PcapNG(lt uint32, frames []Frame) []byte {
	var b bytes.Buffer
	w, err := pcapgo.NewNgWriter(&b, layers.LinkType(lt&0xff))
	if err != nil {
		panic(fmt.Errorf("packettest: pcapng writer: %w", err))
	}
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: Epoch().Add(f.At), CaptureLength: len(f.Data), Length: len(f.Data)}
		if err := w.WritePacket(ci, f.Data); err != nil {
			panic(fmt.Errorf("packettest: write pcapng: %w", err))
		}
	}
	if err := w.Flush(); err != nil {
		panic(fmt.Errorf("packettest: flush pcapng: %w", err))
	}
	return b.Bytes()
}
