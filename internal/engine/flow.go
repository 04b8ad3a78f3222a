package engine

import (
	"net/netip"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// Flow is one decided new flow, as Config.OnFlow receives it: the first
// packet's addresses and ports and the verdict. It is a value of fixed
// size; passing it allocates nothing.
type Flow struct {
	Time    time.Time
	Dir     direction.Dir
	Verdict verdict.Verdict
	// Result is the table's answer (group and rule of an accept, indexes
	// into the table live at the decision); zero before the first table.
	Result filter.Result
	// Reason is the drop reason (ReasonNoMatch, ReasonNoTable), "" on
	// accept.
	Reason   string
	Proto    ipproto.Proto
	Src, Dst netip.Addr // the packet's own: for ingress Src is the peer
	SrcPort  uint16     // zero without ports
	DstPort  uint16
	Length   int // the IP length the packet's header gives
}

// FlowFunc receives decided flows. It is called on the verdict path, by
// each queue's worker, so it must be safe for concurrent use, must not
// block and should not allocate: hand the value to a bounded buffer and
// return.
type FlowFunc func(Flow)

// reportFlow hands the decision on p to the OnFlow hook, which is set.
func (w *Worker) reportFlow(dir direction.Dir, p *packet.Packet, v verdict.Verdict, res filter.Result, reason string) {
	f := Flow{
		Time: w.now(), Dir: dir, Verdict: v, Result: res, Reason: reason,
		Proto: p.Proto, Src: p.Src, Dst: p.Dst, Length: p.Length,
	}
	if p.HasTransport && p.Proto.HasPorts() {
		f.SrcPort, f.DstPort = p.SrcPort, p.DstPort
	}
	w.e.cfg.OnFlow(f)
}
