package replay

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/suggest"
)

// manyFlows is a capture of n frames from many flows: TCP connections
// (handshake, data, FIN or RST), UDP exchanges, pings, ICMP errors
// quoting them, IPv4 fragments (some never completed), IPv6, ARP and
// truncated frames, with time jumps that let flows time out. It spans
// many pipeline batches.
func manyFlows(n int, seed uint64) []packettest.Frame {
	rng := rand.New(rand.NewPCG(seed, 15))
	var frames []packettest.Frame
	at := time.Duration(0)
	add := func(ip []byte) {
		frames = append(frames, packettest.Frame{Data: packettest.Ethernet(ip), At: at})
		at += time.Duration(rng.IntN(3000)) * time.Microsecond
		if rng.IntN(2000) == 0 {
			at += time.Duration(rng.IntN(400)) * time.Second // timeouts pass
		}
	}
	ports := []uint16{22, 53, 80, 443, 5432, 8080}
	for len(frames) < n {
		peer := fmt.Sprintf("198.18.%d.%d", 1+rng.IntN(4), 1+rng.IntN(250))
		sport := uint16(30000 + rng.IntN(2000))
		dport := ports[rng.IntN(len(ports))]
		switch op := rng.IntN(100); {
		case op < 45:
			add(packettest.TCP(peer, hostS, sport, dport, syn))
			add(packettest.TCP(hostS, peer, dport, sport, synack))
			for range rng.IntN(6) {
				add(packettest.TCP(peer, hostS, sport, dport, ack))
			}
			switch rng.IntN(3) {
			case 0:
				add(packettest.TCP(peer, hostS, sport, dport, finack))
				add(packettest.TCP(hostS, peer, dport, sport, finack))
			case 1:
				add(packettest.TCP(hostS, peer, dport, sport, rst))
			}
		case op < 70:
			add(packettest.UDP(peer, hostS, sport, dport, []byte("q")))
			for range rng.IntN(3) {
				add(packettest.UDP(hostS, peer, dport, sport, []byte("a")))
			}
		case op < 78:
			id := uint16(rng.IntN(100))
			add(packettest.Echo(peer, hostS, id, 1))
			add(packettest.EchoReply(hostS, peer, id, 1))
		case op < 83:
			add(packettest.ICMPError(router, hostS, 3, 3, packettest.TCP(hostS, peer, dport, sport, synack)))
		case op < 88:
			frags := packettest.Fragments(packettest.UDP(peer, hostS, sport, 53, make([]byte, 64)), 24, uint32(rng.IntN(1<<16)))
			if rng.IntN(4) == 0 {
				frags = frags[1:] // never completes
			}
			rng.Shuffle(len(frags), func(i, j int) { frags[i], frags[j] = frags[j], frags[i] })
			for _, f := range frags {
				add(f)
			}
		case op < 95:
			p6 := fmt.Sprintf("2001:db8::%x", 1+rng.IntN(500))
			add(packettest.TCP(p6, host6S, sport, dport, syn))
			add(packettest.TCP(host6S, p6, dport, sport, synack))
		case op < 97:
			frames = append(frames, packettest.Frame{Data: packettest.ARP(), At: at})
		default:
			add(packettest.TCP(peer, hostS, sport, dport, syn)[:10])
		}
	}
	return frames
}

// replayed is everything a replay leaves: its summary (without timing),
// its error, the verdict lines, the suggestions and the flows left in
// the main table.
type replayed struct {
	sum     Summary
	err     string
	lines   string
	suggest []suggest.Entry
	flows   map[flowKey]flow
}

func replayWith(t *testing.T, parallel bool, do func(r *Replayer) error) replayed {
	t.Helper()
	var lines bytes.Buffer
	st := suggest.NewTable(1<<12, suggest.Options{})
	r := New(table(t, webRules), Options{
		Hosts:    []netip.Addr{host4, host6},
		Diff:     table(t, webRules[:len(webRules)-len("    egress: []\n")]),
		Verdicts: &lines,
		Suggest:  st,
		MaxFlows: 3000,
		Parallel: parallel,
	})
	err := do(r)
	out := replayed{sum: r.Summary(), err: fmt.Sprint(err), lines: lines.String(), suggest: st.Entries(), flows: map[flowKey]flow{}}
	out.sum.Seconds, out.sum.PPS = 0, 0
	ft := r.main.flows
	for i := range ft.slots {
		if s := &ft.slots[i]; s.gen == ft.gen {
			out.flows[s.key] = s.flow
		}
	}
	return out
}

// TestParallelMatchesSequential replays captures with many flows in
// memory, sequentially (the reference), in memory with
// Options.Parallel, and from a file (read through a buffer), whole and
// cut short, and requires the same summary, verdict lines, suggestions
// and flow table.
func TestParallelMatchesSequential(t *testing.T) {
	capture := packettest.Pcap(uint32(LinkEthernet), manyFlows(40000, 1))
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.pcap")
	cut := filepath.Join(dir, "cut.pcap")
	cutBytes := capture[:len(capture)-len(capture)/3-5]
	if err := os.WriteFile(whole, capture, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cut, cutBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	type replayFunc func(r *Replayer) error
	inMemory := func(name string, b []byte) replayFunc {
		return func(r *Replayer) error { return r.ReplayBytes(name, b) }
	}
	fromFile := func(name string) replayFunc {
		return func(r *Replayer) error { return r.ReplayFile(name) }
	}
	tests := []struct {
		name     string
		ref, got replayFunc
		parallel bool
	}{
		{"parallel in memory", inMemory(whole, capture), inMemory(whole, capture), true},
		{"parallel in memory, cut short", inMemory(cut, cutBytes), inMemory(cut, cutBytes), true},
		{"file", inMemory(whole, capture), fromFile(whole), false},
		{"file cut short", inMemory(cut, cutBytes), fromFile(cut), false},
		{"two files", func(r *Replayer) error {
			if err := r.ReplayBytes(cut, cutBytes); err == nil {
				return fmt.Errorf("the cut capture replayed whole")
			}
			return r.ReplayBytes(whole, capture)
		}, func(r *Replayer) error {
			if err := r.ReplayFile(cut); err == nil {
				return fmt.Errorf("the cut file replayed whole")
			}
			return r.ReplayFile(whole)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := replayWith(t, false, tt.ref)
			got := replayWith(t, tt.parallel, tt.got)
			if seq.sum.Packets < 40000/3 || seq.sum.Flows < 1000 || seq.sum.FlowsExpired == 0 || seq.sum.Fragments.Reassembled == 0 {
				t.Fatalf("the capture does not exercise the replay: %+v", seq.sum)
			}
			if seq.err != got.err {
				t.Errorf("error: sequential %s, got %s", seq.err, got.err)
			}
			if !reflect.DeepEqual(seq.sum, got.sum) {
				t.Errorf("summary:\nsequential %+v\n       got %+v", seq.sum, got.sum)
			}
			if seq.lines != got.lines {
				t.Errorf("verdict lines differ (%d and %d bytes)", len(seq.lines), len(got.lines))
			}
			if !reflect.DeepEqual(seq.suggest, got.suggest) {
				t.Errorf("suggestions differ: %d and %d entries", len(seq.suggest), len(got.suggest))
			}
			if len(seq.flows) == 0 || !reflect.DeepEqual(seq.flows, got.flows) {
				t.Errorf("flow tables differ: %d and %d flows", len(seq.flows), len(got.flows))
			}
		})
	}
}
