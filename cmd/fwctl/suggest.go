package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/suggest"
)

// fwctl suggest: the rules that would admit what fwd in audit mode
// would have dropped.

func init() {
	liveUsage["suggest"] = `usage: fwctl suggest [--prefix4 N] [--prefix6 N] [-o json]
The flows fwd --audit would have dropped, as fwctl allow commands grouped by port and
peer prefix (/24 and /64 unless fwd counts at others; --prefix4/--prefix6 group coarser),
the most frequent first. Review them, apply those you want, then run fwd without --audit.
For a capture: fwctl replay -f RULES --suggest CAPTURE.`
}

// prefixOpts takes --prefix4 N and --prefix6 N out of args.
func prefixOpts(cmd string, e env, args []string) (suggest.Options, []string, bool) {
	var o suggest.Options
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		var dst *int
		limit := 32
		switch a {
		case "--prefix4":
			dst = &o.Bits4
		case "--prefix6":
			dst, limit = &o.Bits6, 128
		default:
			rest = append(rest, a)
			continue
		}
		if i+1 >= len(args) {
			fmt.Fprintf(e.stderr, "fwctl %s: %s needs a value\n", cmd, a)
			return o, nil, false
		}
		i++
		n, err := strconv.Atoi(args[i])
		if err != nil || n < 1 || n > limit {
			fmt.Fprintf(e.stderr, "fwctl %s: bad %s %q: expected 1-%d\n", cmd, a, args[i], limit)
			return o, nil, false
		}
		*dst = n
	}
	return o, rest, true
}

func runSuggest(e env, args []string) int {
	p, args, ok := prefixOpts("suggest", e, args)
	if !ok {
		return exitUsage
	}
	o, words, ok := scanOpts("suggest", e, args, "o")
	if !ok {
		return optsExit(o)
	}
	if len(words) > 0 {
		fmt.Fprintf(e.stderr, "fwctl suggest: unexpected %q\n%s\n", words[0], liveUsage["suggest"])
		return exitUsage
	}
	c, code := dial(e, "suggest", o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	s, err := c.Suggest(cx, p.Bits4, p.Bits6)
	if err != nil {
		return apiFail(e, "suggest", err)
	}
	if o.output == "json" {
		printJSON(e.stdout, s)
		return exitOK
	}
	if !s.Audit {
		fmt.Fprintln(e.stderr, "fwctl suggest: note: fwd is not in audit mode now; these are the would-drops it counted while it was")
	}
	printSuggestions(e.stdout, s.Rules, s.Overflow)
	return exitOK
}

func printSuggestions(w io.Writer, rs []suggest.Entry, overflow uint64) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "No would-drops: the rules admit everything seen so far.")
		return
	}
	fmt.Fprint(w, suggest.Format(rs))
	if overflow > 0 {
		fmt.Fprintf(w, "# %d more would-drops were not grouped: the table was full (fwd --audit-entries)\n", overflow)
	}
}

// auditTotal sums status's would-drop counts.
func auditTotal(a *control.Audit) uint64 {
	var n uint64
	for _, v := range a.WouldDrop {
		n += v
	}
	return n
}
