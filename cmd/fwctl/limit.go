package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/rules"
)

// runLimit is ufw's limit: the rule as allow reads it, with ufw's limit
// (6 new connections per peer in 30 s) on it. Only incoming rules take
// one.
func runLimit(e env, args []string) int {
	o, words, ok := scanOpts("limit", e, args, "odpfs")
	if !ok {
		return optsExit(o)
	}
	if o.store.set() {
		fmt.Fprintf(e.stderr, "fwctl limit: fleet mode (a store is named): limit rules are written in the policy file (fwctl fleet export, edit, fwctl fleet apply)\n")
		return exitRejected
	}
	if len(words) > 0 && words[0] == "out" {
		return ruleFail(e, "limit", rejectErr("limit out: a limit brakes peers that connect to this host; only incoming rules take one"))
	}
	specs, err := ruleWords(words, o)
	if err != nil {
		return ruleFail(e, "limit", err)
	}
	for i := range specs {
		if specs[i].Dir == "out" {
			return ruleFail(e, "limit", rejectErr("limit out: a limit brakes peers that connect to this host; only incoming rules take one"))
		}
		specs[i].Limit = &control.LimitSpec{Conns: rules.DefaultLimitConns, Per: rules.FormatLimitPer(rules.DefaultLimitPer)}
	}
	return sendEdit(e, "limit", o, func(cx context.Context, c *control.Client) (control.EditResult, error) {
		return c.Add(cx, control.AddRequest{Group: o.group, Rules: specs}, o.dryRun)
	})
}

// printLimits prints, in status verbose, each rule with a limit: its
// limited flows and the peers over it now.
func printLimits(w io.Writer, st control.Status) {
	if len(st.Limits) == 0 {
		return
	}
	fmt.Fprintln(w, "Limits (new connections per peer; peers over the limit now):")
	for _, l := range st.Limits {
		line := fmt.Sprintf("  %s %d/%s: %d limited, %s over", l.ID, l.Conns, l.Per, l.Limited, plural(l.Over, "peer"))
		if len(l.Peers) > 0 {
			line += ": " + strings.Join(l.Peers, ", ")
			if l.Over > len(l.Peers) {
				line += ", ..."
			}
		}
		fmt.Fprintln(w, line)
	}
	if t := st.LimitTable; t != nil {
		fmt.Fprintf(w, "Limit table: %d entries, %d in use, %d evictions\n", t.Entries, t.InUse, t.Evictions)
	}
}
