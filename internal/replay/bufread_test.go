package replay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/fwd-project/fwd/internal/packet/packettest"
)

// bufRecords reads every record of capture (a classic pcap) as
// ReplayFile does, through a buffer of size bytes fed by wrap(the bytes
// after the file header), and returns what it read and how it ended.
func bufRecords(t *testing.T, capture []byte, size int, wrap func(io.Reader) io.Reader) (recs []string, end error) {
	t.Helper()
	s, ok, err := openMem(capture[:pcapHeaderLen])
	if !ok || err != nil {
		t.Fatalf("not a pcap: %v", err)
	}
	s.mem = nil
	s.buf = &fileBuf{f: wrap(strings.NewReader(string(capture[pcapHeaderLen:]))), buf: make([]byte, size)}
	return readRecords(s)
}

func readRecords(s *source) (recs []string, end error) {
	for {
		data, lt, ts, err := s.next()
		if err != nil {
			return recs, err
		}
		recs = append(recs, fmt.Sprint(lt, ts, len(data), string(data)))
	}
}

// TestBufferedMatchesInPlace: the hand-managed read buffer frames the
// same records with the same errors as the capture read in place, for
// cuts of the file anywhere in a record, however the reads are split, with the buffer
// just large enough for the largest record (so that it compacts often).
func TestBufferedMatchesInPlace(t *testing.T) {
	var frames []packettest.Frame
	for i := range 12 {
		payload := make([]byte, 7+i*97)
		frames = append(frames, packettest.Frame{
			Data: packettest.Ethernet(packettest.UDP(peer, hostS, 40000+uint16(i), 53, payload)),
			At:   time.Duration(i) * 1500 * time.Millisecond})
	}
	capture := packettest.PcapFormat{Order: binary.BigEndian, Nano: true}.File(uint32(LinkEthernet), frames)
	largest := pcapRecordLen + len(frames[len(frames)-1].Data)
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+err": iotest.DataErrReader,
	}
	for name, wrap := range readers {
		for _, size := range []int{largest, largest + 5, 1 << 16} {
			// Cuts at every residue of 6, not every byte, and the whole file.
			for cut := pcapHeaderLen; ; cut = min(cut+1+cut%5, len(capture)) {
				ref, _, _ := openMem(capture[:cut])
				want, wantEnd := readRecords(ref)
				got, end := bufRecords(t, capture[:cut], size, wrap)
				if !slices.Equal(got, want) || fmt.Sprint(end) != fmt.Sprint(wantEnd) {
					t.Fatalf("%s, buffer %d, cut at %d: got %d records ending %v, want %d ending %v",
						name, size, cut, len(got), end, len(want), wantEnd)
				}
				if cut == len(capture) {
					break
				}
			}
		}
	}
}

// TestBufferedReadError: a read error stops the capture at the record it
// cut, with that error, after the records before it.
func TestBufferedReadError(t *testing.T) {
	frames := []packettest.Frame{
		at(0, packettest.UDP(peer, hostS, 40000, 53, make([]byte, 100))),
		at(1, packettest.UDP(peer, hostS, 40001, 53, make([]byte, 100))),
	}
	capture := packettest.PcapFormat{Order: binary.LittleEndian}.File(uint32(LinkRaw), frames)
	broken := errors.New("disk on fire")
	first := pcapRecordLen + len(frames[0].Data)
	got, end := bufRecords(t, capture, 1<<16, func(r io.Reader) io.Reader {
		return io.MultiReader(io.LimitReader(r, int64(first+3)), iotest.ErrReader(broken))
	})
	var stop *StopError
	if len(got) != 1 || !errors.As(end, &stop) || !errors.Is(stop.Err, broken) ||
		stop.Packet != 2 || stop.Offset != int64(pcapHeaderLen+first) {
		t.Fatalf("got %d records ending %v, want 1 ending at packet 2, offset %d: %v", len(got), end, pcapHeaderLen+first, broken)
	}
	got, end = bufRecords(t, capture, 1<<16, func(io.Reader) io.Reader { return emptyReader{} })
	if len(got) != 0 || !errors.As(end, &stop) || !errors.Is(stop.Err, io.ErrNoProgress) {
		t.Fatalf("a reader that never progresses: got %d records ending %v", len(got), end)
	}
}

// emptyReader reads nothing, forever, without an error.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// TestReplayFileAllocs: reading a capture file through the buffer
// allocates per file, not per packet: twice the packets, the same
// allocations.
func TestReplayFileAllocs(t *testing.T) {
	tb := table(t, webRules)
	write := func(n int) string {
		var frames []packettest.Frame
		for i := range n {
			frames = append(frames, handshake(i, packettest.Ethernet(packettest.UDP(peer, hostS, uint16(10000+i), 53, []byte("q"))))...)
		}
		path := filepath.Join(t.TempDir(), fmt.Sprintf("%d.pcap", n))
		if err := os.WriteFile(path, packettest.Pcap(uint32(LinkEthernet), frames), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	allocs := func(path string) float64 {
		r := New(tb, Options{Hosts: []netip.Addr{host4}})
		n := testing.AllocsPerRun(20, func() {
			if err := r.ReplayFile(path); err != nil {
				t.Fatal(err)
			}
		})
		if re := r.Summary().Reasons; re.Rule == 0 || re.Established == 0 {
			t.Errorf("the capture was not replayed as meant: %+v", re)
		}
		return n
	}
	small, large := allocs(write(500)), allocs(write(1000))
	if large > small {
		t.Errorf("%.1f allocations for 1500 packets, %.1f for 3000: want the same", small, large)
	}
}
