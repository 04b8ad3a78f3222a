package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/control"
)

// fwctl history and fwctl rollback N: the change history fwd keeps
// beside its rules file.

func init() {
	liveUsage["history"] = `usage: fwctl history [-v] [-o json]
Every change of the running rules (start, reload, edit, expire, rollback), failed ones
included: when, what, who (uid, pid and command of the fwctl that asked), the rules'
sha256 before and after. -v adds each change's diff.`
	liveUsage["rollback"] = `usage: fwctl rollback [--dry-run] [-o json] [N]
Restore the rules as of history entry N (fwctl history): the saved rules file replaces
the current one and goes live all or nothing, and the rollback is a history entry itself.
Without N, roll back the change pending confirmation (made with --confirm D) now,
as its deadline would.`
}

func runHistory(e env, args []string) int {
	verbose := false
	var rest []string
	for _, a := range args {
		if a == "-v" || a == "--verbose" {
			verbose = true
			continue
		}
		rest = append(rest, a)
	}
	o, words, ok := scanOpts("history", e, rest, "o")
	if !ok {
		return optsExit(o)
	}
	if len(words) > 0 {
		fmt.Fprintf(e.stderr, "fwctl history: unexpected %q\n%s\n", words[0], liveUsage["history"])
		return exitUsage
	}
	c, code := dial(e, "history", o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	es, err := c.History(cx)
	if err != nil {
		return apiFail(e, "history", err)
	}
	if o.output == "json" {
		printJSON(e.stdout, es)
		return exitOK
	}
	printHistory(e.stdout, es, verbose)
	return exitOK
}

func printHistory(w io.Writer, es []control.HistoryEntry, verbose bool) {
	if len(es) == 0 {
		fmt.Fprintln(w, "No changes recorded.")
		return
	}
	for _, h := range es {
		what := h.Action
		if h.Rollback > 0 {
			what += " to " + strconv.Itoa(h.Rollback)
		}
		result := "ok"
		if !h.OK {
			result = "FAILED"
		}
		change := fmt.Sprintf("%.12s -> %.12s", orNone(h.Before), orNone(h.After))
		if h.Before == h.After {
			change = fmt.Sprintf("%.12s (unchanged)", orNone(h.After))
		}
		fmt.Fprintf(w, "%3d  %s  %-13s %-6s %s  %s\n", h.N, h.Time.UTC().Format("2006-01-02 15:04:05Z"), what, result, change, who(h.Peer))
		if h.Error != "" {
			fmt.Fprintf(w, "     error: %s\n", h.Error)
		}
		if verbose && h.Diff != "" {
			for _, l := range strings.Split(strings.TrimRight(h.Diff, "\n"), "\n") {
				fmt.Fprintf(w, "     %s\n", l)
			}
		}
	}
}

func orNone(h string) string {
	if h == "" {
		return "none"
	}
	return h
}

// who names the peer of a change: "uid 0, pid 4242: fwctl allow 22", or
// "fwd" for the daemon's own (start, SIGHUP, expiry).
func who(p *control.Peer) string {
	if p == nil {
		return "by fwd (start, SIGHUP or expiry)"
	}
	s := fmt.Sprintf("by uid %d, pid %d", p.UID, p.PID)
	if p.Command != "" {
		s += ": " + p.Command
	}
	return s
}

func runRollback(e env, args []string) int {
	o, words, ok := scanOpts("rollback", e, args, "od")
	if !ok {
		return optsExit(o)
	}
	if len(words) > 1 {
		fmt.Fprintf(e.stderr, "fwctl rollback: unexpected %q: expected one history entry number\n%s\n", words[1], liveUsage["rollback"])
		return exitUsage
	}
	n := 0 // the change pending confirmation
	if len(words) == 1 {
		var err error
		if n, err = strconv.Atoi(words[0]); err != nil || n < 1 {
			fmt.Fprintf(e.stderr, "fwctl rollback: bad entry %q: expected a number from fwctl history\n", words[0])
			return exitRejected
		}
	}
	c, code := dial(e, "rollback", o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	res, err := c.Rollback(cx, n, o.dryRun)
	if err != nil {
		return apiFail(e, "rollback", err)
	}
	if o.output == "json" {
		printJSON(e.stdout, res)
		return exitOK
	}
	switch {
	case !res.Changed:
	case res.DryRun:
		fmt.Fprint(e.stdout, res.Diff)
		fmt.Fprintf(e.stdout, "Would roll back to %s (sha256 %.12s). Dry run: nothing changed.\n", rollbackTarget(n), res.Hash)
	default:
		fmt.Fprint(e.stdout, res.Diff)
		fmt.Fprintf(e.stdout, "Rolled back to %s: rules sha256 %.12s are live.\n", rollbackTarget(n), res.Hash)
	}
	for _, note := range res.Notes {
		fmt.Fprintf(e.stdout, "Note: %s\n", note)
	}
	return exitOK
}

// rollbackTarget names what rollback n restores.
func rollbackTarget(n int) string {
	if n == 0 {
		return "the rules before the change pending confirmation"
	}
	return "entry " + strconv.Itoa(n)
}
