package engine

import (
	"testing"

	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// TestDecideContainerHooks: a packet queued before DNAT (PREROUTING) or
// routed to a container (FORWARD) is ingress, decided by the port the
// client connected to; one queued from FORWARD with the egress mark is a
// container's outbound flow, decided by the egress rules.
func TestDecideContainerHooks(t *testing.T) {
	const egressMark = 0x10000000
	tbl, err := lifecycle.Compile(writeRules(t, t.TempDir(), webRules), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := New(tbl, Config{ForwardEgressMark: egressMark}).NewWorker(0)
	pre, fwd := nfq.HookPreRouting, nfq.HookForward
	for _, c := range []struct {
		name string
		hook uint8
		mark uint32
		data []byte
		want verdict.Verdict
	}{
		{"published 8080 from the allowed address", pre, 0, pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 8080), verdict.Accept},
		{"published 8080 from another address", pre, 0, pkt(t, "tcp", "198.18.0.3", "198.18.0.1", 8080), verdict.Drop},
		{"routed to a container's 80", fwd, 0, pkt(t, "tcp", "198.18.0.3", "198.19.1.2", 80), verdict.Accept},
		{"routed to a container's 9000 is not egress", fwd, 0, pkt(t, "tcp", "198.18.0.9", "198.19.1.2", 9000), verdict.Drop},
		{"container outbound to 9000", fwd, egressMark, pkt(t, "tcp", "198.19.1.2", "198.18.0.9", 9000), verdict.Accept},
		{"container outbound to 9001", fwd, egressMark, pkt(t, "tcp", "198.19.1.2", "198.18.0.9", 9001), verdict.Drop},
		{"egress mark on PREROUTING means nothing", pre, egressMark, pkt(t, "tcp", "198.18.0.9", "198.18.0.1", 9000), verdict.Drop},
	} {
		if got := w.Decide(&nfq.Msg{ID: 1, Hook: c.hook, Mark: c.mark, Payload: c.data}); got != c.want {
			t.Errorf("%s: verdict %v, want %v", c.name, got, c.want)
		}
	}
}
