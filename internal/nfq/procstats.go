package nfq

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// KernelStats is one line of /proc/net/netfilter/nfnetlink_queue: the
// kernel's own view of a queue bound in the reading process's namespace.
type KernelStats struct {
	Num          uint16
	PortID       uint32 // netlink port id of the listener
	Waiting      uint32 // packets queued, waiting for a verdict
	CopyMode     uint8
	CopyRange    uint32
	QueueDropped uint64 // dropped (or accepted, failing open) because the queue was full
	UserDropped  uint64 // dropped because the netlink socket's buffer was full
	IDSequence   uint32 // id of the last packet queued: packets queued so far
}

// ProcPath is where the kernel publishes KernelStats.
const ProcPath = "/proc/net/netfilter/nfnetlink_queue"

// ParseKernelStats reads the format of ProcPath.
func ParseKernelStats(r io.Reader) ([]KernelStats, error) {
	var out []KernelStats
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 8", line, len(f))
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d field %d: %w", line, i+1, err)
			}
			v[i] = n
		}
		out = append(out, KernelStats{
			Num: uint16(v[0]), PortID: uint32(v[1]), Waiting: uint32(v[2]),
			CopyMode: uint8(v[3]), CopyRange: uint32(v[4]),
			QueueDropped: v[5], UserDropped: v[6], IDSequence: uint32(v[7]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read queue stats: %w", err)
	}
	return out, nil
}

// ReadKernelStats reads ProcPath: the queues bound in the calling
// process's network namespace.
func ReadKernelStats() ([]KernelStats, error) {
	f, err := os.Open(ProcPath)
	if err != nil {
		return nil, fmt.Errorf("queue stats: %w", err)
	}
	defer f.Close()
	return ParseKernelStats(f)
}

// SumKernelStats adds up the counters of queues first..first+count-1
// (Waiting, QueueDropped, UserDropped, IDSequence; the rest stay zero).
func SumKernelStats(ks []KernelStats, first, count uint16) KernelStats {
	var s KernelStats
	for _, k := range ks {
		if k.Num < first || int(k.Num) >= int(first)+int(count) {
			continue
		}
		s.Waiting += k.Waiting
		s.QueueDropped += k.QueueDropped
		s.UserDropped += k.UserDropped
		s.IDSequence += k.IDSequence
	}
	return s
}
