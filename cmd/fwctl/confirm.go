package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/rules"
)

// Changing rules safely: --confirm DURATION and --force on the commands
// that change rules, fwctl apply FILE and fwctl confirm. The timer of a
// confirmed change lives in fwd: fwctl may die, the rollback happens.

const safetyUsage = `--confirm DURATION: roll back unless fwctl confirm comes within DURATION; --force: go through the lockout guard.`

func init() {
	for _, c := range []string{"allow", "limit", "delete", "deny", "insert", "reload"} {
		liveUsage[c] += "\n" + safetyUsage
	}
	liveUsage["apply"] = `usage: fwctl apply [--confirm DURATION] [--force] [--dry-run] [-o json] FILE
Replaces the running fwd's rules file with FILE's contents, validated first (as fwctl validate),
all or nothing; - reads standard input.
` + safetyUsage
	liveUsage["confirm"] = `usage: fwctl confirm [-o json]
Keeps the change made with --confirm; without it, fwd rolls the rules back at the deadline
(fwctl status shows it).`
}

// scanSafety takes --force and --confirm; false when the value is bad
// (said on stderr).
func scanSafety(cmd string, e env, name, val string, hasVal bool, o *liveOpts) bool {
	switch name {
	case "--force":
		o.force = true
		if hasVal {
			b, err := strconv.ParseBool(val)
			if err != nil {
				fmt.Fprintf(e.stderr, "fwctl %s: bad --force value %q\n", cmd, val)
				return false
			}
			o.force = b
		}
	case "--confirm":
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 || d > lifecycle.MaxConfirm {
			fmt.Fprintf(e.stderr, "fwctl %s: bad --confirm %q: expected a duration such as 60s or 5m, more than 0 and at most %s\n", cmd, val, lifecycle.MaxConfirm)
			return false
		}
		o.confirm = d
	}
	return true
}

// printPending says what a confirmed change waits for.
func printPending(w io.Writer, p *control.Pending) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "Confirm with fwctl confirm by %s (in %s), or fwd rolls back to the previous rules (sha256 %.12s).\n",
		p.Deadline.Local().Format(time.RFC3339), time.Until(p.Deadline).Round(time.Second), p.PreviousHash)
}

// printSafety prints, under Status, a pending confirmed change and the
// failsafe; verbose adds the admins, sshd's ports and the counts.
func printSafety(w io.Writer, st *control.SafetyStatus, mode string) {
	if st == nil {
		return
	}
	if p := st.Pending; p != nil {
		fmt.Fprintf(w, "Pending: a confirmed change (sha256 %.12s) is rolled back at %s (in %s) unless fwctl confirm; other changes are refused until then\n",
			p.Hash, p.Deadline.Local().Format(time.RFC3339), time.Until(p.Deadline).Round(time.Second))
	}
	if st.Failsafe {
		fmt.Fprintf(w, "Failsafe: ssh from %s to port %s always admitted\n", addrList(st), portList(st.FailsafePorts))
	}
	if mode != "verbose" {
		return
	}
	if len(st.SSHPorts) > 0 {
		fmt.Fprintf(w, "SSH ports: %s\n", portList(st.SSHPorts))
	}
	for _, a := range st.Admins {
		fmt.Fprintf(w, "Admin: %s to port %d (uid %d, last seen %s)\n", a.Addr, a.Port, a.UID, a.LastSeen.Local().Format(time.RFC3339))
	}
	if st.Refused+st.Forced+st.Confirmed+st.RolledBack > 0 {
		fmt.Fprintf(w, "Lockout guard: %d refused, %d forced; confirmed changes: %d confirmed, %d rolled back\n", st.Refused, st.Forced, st.Confirmed, st.RolledBack)
	}
}

func addrList(st *control.SafetyStatus) string {
	if len(st.FailsafeAddrs) == 0 {
		return "the admins fwd sees on its control socket (none yet)"
	}
	parts := make([]string, len(st.FailsafeAddrs))
	for i, a := range st.FailsafeAddrs {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}

func portList(ps []uint16) string {
	if len(ps) == 0 {
		return "none"
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = strconv.Itoa(int(p))
	}
	return strings.Join(parts, ",")
}

func runApply(e env, args []string) int {
	o, words, ok := scanOpts("apply", e, args, "odf")
	if !ok {
		return optsExit(o)
	}
	if len(words) != 1 {
		fmt.Fprintf(e.stderr, "fwctl apply: expected one rules file\n%s\n", liveUsage["apply"])
		return exitUsage
	}
	name := words[0]
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(e.stdin, rules.DefaultMaxFileBytes+1))
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl apply: %v\n", err)
		if os.IsPermission(err) {
			return exitPermission
		}
		return exitRejected
	}
	// Validate here first, so that errors name FILE, not fwd's rules
	// file.
	if _, err := rules.Parse(name, data, rules.Options{}); err != nil {
		fmt.Fprintf(e.stderr, "fwctl apply: %s has errors, nothing changed:\n%v\n", name, err)
		return exitRejected
	}
	c, code := dial(e, "apply", o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	res, err := c.Apply(cx, data, o.dryRun)
	if err != nil {
		return apiFail(e, "apply", err)
	}
	if o.output == "json" {
		printJSON(e.stdout, res)
		return exitOK
	}
	switch {
	case res.DryRun:
	case res.Changed:
		fmt.Fprintf(e.stdout, "Rules applied from %s (sha256 %.12s)\n", name, res.Hash)
	}
	for _, n := range res.Notes {
		if !res.DryRun && res.Confirm != nil && strings.HasPrefix(n, "confirm with fwctl confirm") {
			continue // said below, with the time left
		}
		fmt.Fprintf(e.stdout, "Note: %s\n", n)
	}
	printPending(e.stdout, res.Confirm)
	if res.DryRun {
		fmt.Fprint(e.stdout, res.Diff)
		fmt.Fprintln(e.stdout, "Dry run: nothing changed.")
	}
	return exitOK
}

func runConfirm(e env, args []string) int {
	o, words, ok := scanOpts("confirm", e, args, "o")
	if !ok {
		return optsExit(o)
	}
	if len(words) > 0 {
		fmt.Fprintf(e.stderr, "fwctl confirm: unexpected %q\n%s\n", words[0], liveUsage["confirm"])
		return exitUsage
	}
	c, code := dial(e, "confirm", o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	res, err := c.Confirm(cx)
	if err != nil {
		return apiFail(e, "confirm", err)
	}
	if o.output == "json" {
		printJSON(e.stdout, res)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "Confirmed: %s\n", strings.TrimPrefix(res.Message, "change confirmed "))
	return exitOK
}
