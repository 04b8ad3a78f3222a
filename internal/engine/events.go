package engine

import (
	"net/netip"
	"time"

	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// DropEvent is one logged drop: what the rate-limited drop log says,
// as values.
type DropEvent struct {
	Time   time.Time
	Dir    direction.Dir
	Peer   netip.Addr // the remote address; invalid for an undecodable packet
	Proto  ipproto.Proto
	Port   uint16 // destination port (0 when the protocol has none)
	Reason string // ReasonNoMatch, ReasonUndecodable or ReasonNoTable
	Worker int
}

// DropRecorder receives the drops the engine logs (Config.Drops). It is
// called only for drops the rate limiter lets through, from the worker
// that decided, so it may take a lock but must not block for long. The
// drops the limiter holds back are counted (Stats.DropLogSkipped), not
// recorded.
type DropRecorder interface {
	RecordDrop(DropEvent)
}
