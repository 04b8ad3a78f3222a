package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/replay"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/suggest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

const replayUsage = `usage: fwctl replay -f RULES [--host ADDR,...] [--iface NAME] [--json] [--verdicts FILE]
                    [--diff OTHER_RULES] [--max-flows N] [--suggest [--prefix4 N] [--prefix6 N]]
                    [--max-rules N] [--max-file-bytes N] CAPTURE...

Replays pcap and pcapng captures through the rules as the host would see
them, and sums up what the rules accept and drop. A packet to a --host
address is ingress, from one egress, other packets are transit; without
--host the first packet of each flow is taken as ingress to its
destination. Flows start on an accepted first packet; their later packets,
both ways, are accepted as established. Each capture is replayed on its
own (flows do not carry over from one file to the next). --suggest adds,
after the summary, fwctl allow commands that would admit the dropped new
connections, grouped by port and peer prefix (/24 and /64 by default), as
fwctl suggest shows a running fwd --audit's.

Exit status: 0 replayed, 1 bad rules or a file that is not a capture,
2 usage, 4 permission denied, 5 a capture stopped early (truncated or
corrupt). No summary is printed when no capture could be read.
`

type hostList []netip.Addr

func (h *hostList) String() string {
	s := make([]string, len(*h))
	for i, a := range *h {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func (h *hostList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("bad host address %q", f)
		}
		*h = append(*h, a.Unmap())
	}
	return nil
}

// replayArgs are fwctl replay's parsed arguments.
type replayArgs struct {
	rules, diff, verdicts string
	iface                 string // --iface: the interface the capture was taken on
	hosts                 hostList
	asJSON                bool
	maxFlows              int
	limits                rules.Options
	captures              []string
	suggest               bool
	bits4, bits6          int
}

func runReplay(e env, args []string) int {
	a, code, ok := parseReplayArgs(e, args)
	if !ok {
		return code
	}
	opts, out, code := replayOptions(e, &a)
	if code != exitOK {
		return code
	}
	prog := newProgress(e.stderr)
	if prog != nil {
		opts.Progress = prog.show
	}
	if a.suggest {
		opts.Suggest = suggest.NewTable(replaySuggestEntries, suggest.Options{Bits4: a.bits4, Bits6: a.bits6})
	}
	r := replay.New(onIface(&opts, a.iface), opts.Options)
	code, replayed := replayAll(e, r, a.captures, prog)
	if c, ok := opts.Verdicts.(io.Closer); ok && opts.Verdicts != e.stdout {
		if err := c.Close(); err != nil {
			fmt.Fprintf(e.stderr, "fwctl replay: write verdicts: %v\n", err)
			code = exitRejected
		}
	}
	if replayed == 0 {
		return code // no capture could be opened: no summary to give
	}
	sum := r.Summary()
	if a.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintf(e.stderr, "fwctl replay: %v\n", err)
			return exitRejected
		}
		return code
	}
	writeSummary(out, sum, a.diff)
	if t := opts.Suggest; t != nil {
		fmt.Fprintln(out, "\nSuggested rules for the dropped new connections:")
		printSuggestions(out, suggest.Aggregate(t.Entries(), t.Options()), t.Overflow())
	}
	return code
}

// replaySuggestEntries bounds the groups replay --suggest counts.
const replaySuggestEntries = 1 << 16

// parseReplayArgs reads replay's flags, which may come before, between or
// after the captures, as in `fwctl replay x.pcap -f r.yaml`.
func parseReplayArgs(e env, args []string) (replayArgs, int, bool) {
	var a replayArgs
	fl := newFlags("replay", e)
	fl.Usage = func() { fmt.Fprint(e.stderr, replayUsage) }
	fl.StringVar(&a.rules, "f", "", "rules file")
	fl.BoolVar(&a.asJSON, "json", false, "print the summary as one JSON object")
	fl.StringVar(&a.verdicts, "verdicts", "", "write one JSON line per packet to `FILE` (- for stdout)")
	fl.StringVar(&a.diff, "diff", "", "also replay `OTHER_RULES` and list the flows whose verdict changes")
	fl.IntVar(&a.maxFlows, "max-flows", replay.DefaultMaxFlows, "flow table bound")
	fl.Var(&a.hosts, "host", "the host's `ADDR`esses, comma separated")
	fl.StringVar(&a.iface, "iface", "", "judge packets as on interface `NAME`, by the groups attached to it")
	fl.BoolVar(&a.suggest, "suggest", false, "after the summary, propose rules for the dropped new connections")
	fl.IntVar(&a.bits4, "prefix4", suggest.DefaultBits4, "with --suggest, group IPv4 peers by this prefix `length`")
	fl.IntVar(&a.bits6, "prefix6", suggest.DefaultBits6, "with --suggest, group IPv6 peers by this prefix `length`")
	limits := addLimitFlags(fl)
	captures, code, ok := parseInterleaved(fl, args)
	if !ok {
		return a, code, false
	}
	a.captures = captures
	var err error
	switch a.limits, err = limits.options(); {
	case a.rules == "":
		err = errors.New("-f RULES is required")
	case len(a.captures) == 0:
		err = errors.New("no capture given")
	case a.maxFlows <= 0:
		err = errors.New("--max-flows must be positive")
	case a.bits4 < 1 || a.bits4 > 32:
		err = fmt.Errorf("bad --prefix4 %d: expected 1-32", a.bits4)
	case a.bits6 < 1 || a.bits6 > 128:
		err = fmt.Errorf("bad --prefix6 %d: expected 1-128", a.bits6)
	case a.suggest && a.asJSON:
		err = errors.New("--suggest prints text: use it without --json")
	case a.iface != "" && (rules.CheckIfacePattern(a.iface) != nil || strings.ContainsAny(a.iface, "*+")):
		err = fmt.Errorf("bad --iface %q: expected an interface name such as eth1", a.iface)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl replay: %v\n", err)
		fl.Usage()
		return a, exitUsage, false
	}
	return a, exitOK, true
}

// replaySetup is what a Replayer is made of: the rules' table and the
// options, with where the summary goes.
type replaySetup struct {
	replay.Options
	table *filter.Table
}

// replayOptions loads the rules (and --diff's) and opens --verdicts; out
// is where the summary goes (stderr when the verdicts take stdout).
func replayOptions(e env, a *replayArgs) (replaySetup, io.Writer, int) {
	s := replaySetup{Options: replay.Options{Hosts: a.hosts, MaxFlows: a.maxFlows, LabelVerdicts: len(a.captures) > 1}}
	var err error
	if s.table, err = loadRules(a.rules, a.limits, e.stderr); err != nil {
		fmt.Fprintf(e.stderr, "fwctl replay: %v\n", err)
		return s, nil, loadExit(err)
	}
	if a.diff != "" {
		if s.Diff, err = loadRules(a.diff, a.limits, e.stderr); err != nil {
			fmt.Fprintf(e.stderr, "fwctl replay: %v\n", err)
			return s, nil, loadExit(err)
		}
	}
	out := e.stdout
	switch a.verdicts {
	case "":
	case "-":
		s.Verdicts = e.stdout
		out = e.stderr // keep stdout for the verdict lines
	default:
		f, err := os.Create(a.verdicts)
		if err != nil {
			fmt.Fprintf(e.stderr, "fwctl replay: %v\n", err)
			return s, nil, loadExit(err)
		}
		s.Verdicts = f
	}
	return s, out, exitOK
}

// replayAll replays each capture, saying why one stopped early or could
// not be read; replayed counts the captures that were read at all.
func replayAll(e env, r *replay.Replayer, captures []string, prog *progress) (code, replayed int) {
	for _, c := range captures {
		err := r.ReplayFile(c)
		prog.clear()
		var stop *replay.StopError
		switch {
		case err == nil:
			replayed++
		case errors.As(err, &stop):
			replayed++
			fmt.Fprintf(e.stderr, "fwctl replay: %v\n", err)
			if code == exitOK {
				code = exitIncomplete
			}
		default:
			fmt.Fprintf(e.stderr, "fwctl replay: %v\n", err)
			code = max(code, loadExit(err))
		}
	}
	return code, replayed
}

func writeSummary(w io.Writer, s replay.Summary, diffPath string) {
	files := "capture"
	if len(s.Files) != 1 {
		files = "captures"
	}
	fmt.Fprintf(w, "replayed %d packets from %d %s in %.3fs (%s packets/s)\n",
		s.Packets, len(s.Files), files, s.Seconds, human(s.PPS))
	r := s.Reasons
	// The ACL's counts are said only when it decided something, so that
	// the lines of rules without an ACL stay as they were.
	aclAllow, aclDeny := "", ""
	if r.ACLAllow+r.ACLDeny > 0 {
		aclAllow, aclDeny = fmt.Sprintf(", acl %d", r.ACLAllow), fmt.Sprintf(", acl %d", r.ACLDeny)
	}
	fmt.Fprintf(w, "  accepted   %d  (rule %d%s, established %d, related %d, loopback %d, neighbour discovery %d)\n",
		s.Accepted, r.Rule, aclAllow, r.Established, r.Related, r.Loopback, r.NeighbourDiscovery)
	fmt.Fprintf(w, "  dropped    %d  (no rule %d%s, malformed %d)\n", s.Dropped, r.NoMatch, aclDeny, r.Malformed)
	fmt.Fprintf(w, "  transit    %d\n", s.Transit)
	fmt.Fprintf(w, "  not IP     %d\n", s.NotIP)
	fmt.Fprintf(w, "  flows      %d started, %d closed, %d timed out", s.Flows, s.FlowsClosed, s.FlowsExpired)
	if s.FlowOverflow > 0 {
		fmt.Fprintf(w, ", %d not tracked (table full at --max-flows %d)", s.FlowOverflow, s.MaxFlows)
	}
	fmt.Fprintln(w)
	if s.Fragments != (replay.FragStats{}) {
		fmt.Fprintf(w, "  fragments  %d datagrams reassembled, %d fragments never completed\n",
			s.Fragments.Reassembled, s.Fragments.Incomplete)
	}
	for _, f := range s.Files {
		state := "complete"
		if f.Stop != nil {
			state = fmt.Sprintf("stopped at packet %d", f.Stop.Packet)
			if f.Stop.Offset >= 0 {
				state += fmt.Sprintf(" (byte offset %d)", f.Stop.Offset)
			}
			state += ": " + f.Stop.Error
		}
		links := strings.Join(f.LinkTypes, "+")
		if links == "" {
			links = "no link type" // a pcapng without interfaces
		}
		fmt.Fprintf(w, "  %s: %s, %s, %d packets over %.1fs, %s\n",
			f.Path, f.Format, links, f.Packets, f.Duration, state)
	}
	if s.Diff == nil {
		return
	}
	d := s.Diff
	fmt.Fprintf(w, "with %s: accepted %d, dropped %d; %d flows change", diffPath, d.Accepted, d.Dropped, len(d.Changes))
	if d.Overflow > 0 {
		fmt.Fprintf(w, " (and %d more not listed)", d.Overflow)
	}
	fmt.Fprintln(w)
	for _, c := range d.Changes {
		fmt.Fprintf(w, "  %-6s %s -> %s  %s  %s -> %s  %d packets  (%s #%d)\n",
			c.Proto.String(), endpoint(c.Src, c.SrcPort, c.Proto), endpoint(c.Dst, c.DstPort, c.Proto),
			c.Time.Format(time.RFC3339Nano), c.Old, c.New, c.Packets, c.File, c.Packet)
	}
}

func endpoint(a netip.Addr, port uint16, proto ipproto.Proto) string {
	if proto.HasPorts() {
		return netip.AddrPortFrom(a, port).String()
	}
	return a.String()
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// progress draws a progress line on stderr when stderr is a terminal.
type progress struct {
	w     io.Writer
	start time.Time
	last  time.Time
	shown bool
}

// newProgress returns nil unless w is a terminal.
func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return nil
	}
	now := time.Now()
	return &progress{w: w, start: now, last: now}
}

func (p *progress) show(pr replay.Progress) {
	now := time.Now()
	if now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	rate := float64(pr.Total) / now.Sub(p.start).Seconds()
	fmt.Fprintf(p.w, "\r\033[Kreplay %s: %d packets (%s packets/s)", pr.File, pr.Packets, human(rate))
	p.shown = true
}

func (p *progress) clear() {
	if p != nil && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
