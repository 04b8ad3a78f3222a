package engine

import (
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// TestDecideLongIPv6Chains (issue 16, bug 5): a SYN behind a long IPv6
// extension header chain is judged on its port when the queue hands over
// the whole packet (nfq.DefaultCopyRange); cut before its TCP header, as
// the old 128-byte copy range did, it cannot be judged and is dropped as
// undecodable (fail-closed), allowed port or not.
func TestDecideLongIPv6Chains(t *testing.T) {
	e, _ := mustEngine(t, webRules, nil)
	w := e.NewWorker(0)
	syn := func(port uint16, ext ...packettest.Ext) []byte {
		return packettest.MustBuild(packettest.Spec{
			Src: netip.MustParseAddr("2001:db8::9"), Dst: netip.MustParseAddr("2001:db8::1"),
			Proto: ipproto.TCP, SrcPort: 40000, DstPort: port, TCPFlags: packet.SYN, Ext: ext,
		})
	}
	many := func(n, size int) []packettest.Ext {
		ext := make([]packettest.Ext, n)
		for i := range ext {
			ext[i] = packettest.Ext{Type: ipproto.DestOpts, Len: size}
		}
		return ext
	}
	for _, tc := range []struct {
		name      string
		data      []byte
		copyRange int
		want      verdict.Verdict
		reason    string
	}{
		{"256-byte option, allowed, whole packet", syn(443, many(1, 256)...), nfq.DefaultCopyRange, verdict.Accept, ""},
		{"256-byte option, denied, whole packet", syn(22, many(1, 256)...), nfq.DefaultCopyRange, verdict.Drop, ReasonNoMatch},
		{"40 headers, allowed, whole packet", syn(443, many(40, 8)...), nfq.DefaultCopyRange, verdict.Accept, ""},
		{"40 headers, denied, whole packet", syn(22, many(40, 8)...), nfq.DefaultCopyRange, verdict.Drop, ReasonNoMatch},
		{"31 headers of 2048 bytes, allowed, whole packet", syn(443, many(31, 2048)...), nfq.DefaultCopyRange, verdict.Accept, ""},
		{"256-byte option, allowed, cut at 128", syn(443, many(1, 256)...), 128, verdict.Drop, ReasonUndecodable},
		{"40 headers, allowed, cut at 128", syn(443, many(40, 8)...), 128, verdict.Drop, ReasonUndecodable},
		{"40 headers, denied, cut at 128", syn(22, many(40, 8)...), 128, verdict.Drop, ReasonUndecodable},
		{"cut inside the tcp header", syn(443, many(1, 256)...), 40 + 256 + 10, verdict.Drop, ReasonUndecodable},
		{"cut after the tcp header", syn(443, many(1, 256)...), 40 + 256 + 20, verdict.Accept, ""},
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
