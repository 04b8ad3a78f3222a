package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/flowlog"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// flowLogOptions are the --flow-log flags.
type flowLogOptions struct {
	path    string // "" is off
	maxSize int64
	files   int
	rate    int
}

// minFlowLogSize keeps --flow-log-max-size above a few lines.
const minFlowLogSize = 4 << 10

func (o *flowLogOptions) register(fs *flag.FlagSet) *string {
	fs.StringVar(&o.path, "flow-log", "", "write one line per decided new flow to `file`, in the AWS VPC Flow Logs version 2 format (off by default)")
	fs.IntVar(&o.files, "flow-log-files", flowlog.DefaultFiles, "flow log files kept, the current one included (FILE, FILE.1 ... FILE.N-1)")
	fs.IntVar(&o.rate, "flow-log-rate", flowlog.DefaultRate, "flow log lines written per second at most; the rest are counted in a SKIPDATA line")
	return fs.String("flow-log-max-size", "64MiB", "flow log `size` at which it is rotated: bytes, or a number with KiB, MiB or GiB")
}

// check validates the flags once parsed; given lists the flags set.
func (o *flowLogOptions) check(size string, given map[string]bool) error {
	n, err := parseSize(size)
	if err != nil || n < minFlowLogSize {
		return fmt.Errorf("--flow-log-max-size %q: want a size of at least 4KiB (bytes, or a number with KiB, MiB or GiB)", size)
	}
	o.maxSize = n
	if o.files < 1 {
		return fmt.Errorf("--flow-log-files %d: want at least 1", o.files)
	}
	if o.rate < 1 {
		return fmt.Errorf("--flow-log-rate %d: want at least 1 line per second", o.rate)
	}
	if o.path == "" {
		for _, f := range []string{"flow-log-max-size", "flow-log-files", "flow-log-rate"} {
			if given[f] {
				return fmt.Errorf("--%s needs --flow-log FILE", f)
			}
		}
	}
	return nil
}

// parseSize reads a byte count: digits, optionally followed by K, M or G
// (with or without iB; all are powers of 1024).
func parseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// openFlowLog opens the flow log when one is asked for (nil otherwise).
func openFlowLog(o flowLogOptions, log *slog.Logger) (*flowlog.Logger, error) {
	if o.path == "" {
		return nil, nil
	}
	return flowlog.Open(flowlog.Config{Path: o.path, MaxSize: o.maxSize, Files: o.files, Rate: o.rate, Log: log})
}

// flowHook is the engine's OnFlow: nil (off) without --flow-log. The
// engine is made before the flow log is opened (the rules are loaded
// first); d.flows is set before the workers start.
func (d *daemon) flowHook() engine.FlowFunc {
	if d.o.flowLog.path == "" {
		return nil
	}
	return func(f engine.Flow) {
		d.flows.Log(flowlog.Record{
			Time: f.Time, Accept: f.Verdict == verdict.Accept, Proto: f.Proto,
			Src: f.Src, Dst: f.Dst, SrcPort: f.SrcPort, DstPort: f.DstPort, Length: f.Length,
		})
	}
}

// addFlowLogCounters adds the flow log's counters to status's.
func addFlowLogCounters(c map[string]uint64, l *flowlog.Logger) {
	if l == nil {
		return
	}
	s := l.Stats()
	c["flow_log_written"] = s.Written
	c["flow_log_skipped"] = s.Skipped // over --flow-log-rate
	c["flow_log_dropped"] = s.Dropped // the buffer was full
	c["flow_log_errors"] = s.Errors
}
