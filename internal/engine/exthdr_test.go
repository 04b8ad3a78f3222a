package engine

import (
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/packet"
)

// TestDecideLongIPv6Chains (issue 16, bug 5): a SYN behind a long IPv6
// extension header chain is judged on its port when the queue hands over
// the whole packet (nfq.DefaultCopyRange); cut before its TCP header, as
// the old 128-byte copy range did, it cannot be judged and is dropped as
// undecodable (fail-closed), allowed port or not.
func TestDecideLongIPv6Chains(t *testing.T) {
	e, _ := mustEngine(t, webRules, nil)
	w := e.NewWorker(0)
	syn := func(port uint16, ext ...packet.Ext) []byte {
		return packet.MustBuild(packet.Spec{
			Src: netip.MustParseAddr("2001:db8::9"), Dst: netip.MustParseAddr("2001:db8::1"),
			Proto: filter.ProtoTCP, SrcPort: 40000, DstPort: port, TCPFlags: packet.SYN, Ext: ext,
		})
	}
	many := func(n, size int) []packet.Ext {
		ext := make([]packet.Ext, n)
		for i := range ext {
			ext[i] = packet.Ext{Type: packet.ExtDestination, Len: size}
		}
		return ext
	}
	for _, tc := range []struct {
		name      string
		data      []byte
		copyRange int
		want      nfq.Verdict
		reason    string
	}{
		{"256-byte option, allowed, whole packet", syn(443, many(1, 256)...), nfq.DefaultCopyRange, nfq.Accept, ""},
		{"256-byte option, denied, whole packet", syn(22, many(1, 256)...), nfq.DefaultCopyRange, nfq.Drop, ReasonNoMatch},
		{"40 headers, allowed, whole packet", syn(443, many(40, 8)...), nfq.DefaultCopyRange, nfq.Accept, ""},
		{"40 headers, denied, whole packet", syn(22, many(40, 8)...), nfq.DefaultCopyRange, nfq.Drop, ReasonNoMatch},
		{"31 headers of 2048 bytes, allowed, whole packet", syn(443, many(31, 2048)...), nfq.DefaultCopyRange, nfq.Accept, ""},
		{"256-byte option, allowed, cut at 128", syn(443, many(1, 256)...), 128, nfq.Drop, ReasonUndecodable},
		{"40 headers, allowed, cut at 128", syn(443, many(40, 8)...), 128, nfq.Drop, ReasonUndecodable},
		{"40 headers, denied, cut at 128", syn(22, many(40, 8)...), 128, nfq.Drop, ReasonUndecodable},
		{"cut inside the tcp header", syn(443, many(1, 256)...), 40 + 256 + 10, nfq.Drop, ReasonUndecodable},
		{"cut after the tcp header", syn(443, many(1, 256)...), 40 + 256 + 20, nfq.Accept, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data[:min(len(tc.data), tc.copyRange)]
			before := w.undecodable.Load()
			if got := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: data}); got != tc.want {
				t.Errorf("Decide = %v, want %v", got, tc.want)
			}
			undecodable := w.undecodable.Load() - before
			if want := tc.reason == ReasonUndecodable; (undecodable == 1) != want {
				t.Errorf("undecodable drops grew by %d, want reason %q", undecodable, tc.reason)
			}
		})
	}
}
