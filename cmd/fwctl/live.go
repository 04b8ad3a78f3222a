package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/rules"
)

// The commands in this file talk to a running fwd over its control
// socket: allow, delete, status, reload (and check without -f, in
// check.go). Options may come anywhere on the line, as with ufw.

var liveUsage = map[string]string{
	"allow": `usage: fwctl allow [--dry-run] [--group G] [--profiles DIR] [-o json] [in|out] [on IFACE] RULE [comment TEXT]
RULE is PORT[/PROTO] (443/tcp, 80,443/tcp, 6000:6007/udp, 53), a SERVICE (ssh),
an application profile ('Nginx Full', see fwctl app list),
or [proto PROTO [type ICMPTYPE[/CODE]]] [from ADDR] [to ADDR] [port PORT | app NAME].`,
	"limit": `usage: fwctl limit [--dry-run] [--group G] [--profiles DIR] [-o json] [in] RULE [comment TEXT]
RULE as for allow (22/tcp, ssh, OpenSSH, from ADDR to any port 22 proto tcp): allows it, and
drops a peer that opens more than 6 new connections through it within 30 seconds (ufw's limit).
For other figures write limit: {conns: N, per: DURATION} on the rule in the rules file.`,
	"app": `usage: fwctl app list [--profiles DIR] [-o json]
       fwctl app info [--profiles DIR] [-o json] NAME|all
Profiles are read from /usr/share/fwd/applications.d (fwd's), /etc/ufw/applications.d and
/etc/fwd/applications.d, a later one replacing a profile of the same name; --profiles DIR reads DIR alone.`,
	"delete": `usage: fwctl delete [--dry-run] [--revoke] [-o json] N|ID...
       fwctl delete [--dry-run] [--revoke] [--profiles DIR] [-o json] allow [in|out] [on IFACE] RULE
       fwctl delete [--dry-run] [--revoke] [--profiles DIR] [-o json] limit RULE
       fwctl delete [--dry-run] [-o json] deny RULE
       fwctl delete [--dry-run] [-o json] acl [in|out] N...
N is a rule's number in fwctl status numbered, ID its ID (sgr-...) in fwctl status;
acl N an ACL entry's number (the Number column of fwctl status).
Established connections the deleted rules allowed go on; --revoke cuts those the rules left no longer allow.`,
	"status": `usage: fwctl status [numbered|verbose] [-o json]`,
	"reload": `usage: fwctl reload [--revoke] [--confirm DURATION] [--force] [-o json]
--revoke also cuts the established connections the reloaded rules no longer allow.`,
}

// dial connects to the daemon; on failure it prints why and returns the
// exit code.
func dial(e env, cmd string, o liveOpts) (*control.Client, int) {
	c, err := control.Dial(o.socket)
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl %s: %v\n", cmd, err)
		return nil, clientExit(err)
	}
	c.Force, c.ConfirmWithin = o.force, o.confirm
	return c, exitOK
}

// clientExit maps a client error to an exit code.
func clientExit(err error) int {
	var ae *control.Error
	switch {
	case errors.Is(err, control.ErrPermission):
		return exitPermission
	case errors.As(err, &ae):
		if ae.Code == control.CodeForbidden {
			return exitPermission
		}
		return exitRejected
	case errors.Is(err, control.ErrUnreachable):
		return exitUnreach
	}
	return exitUnreach
}

// apiFail prints an API error (with every detail) and returns its exit
// code.
func apiFail(e env, cmd string, err error) int {
	fmt.Fprintf(e.stderr, "fwctl %s: %v\n", cmd, err)
	return clientExit(err)
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

func printJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ") // plain structs: cannot fail
	fmt.Fprintf(w, "%s\n", b)
}

func runAllow(e env, args []string) int {
	o, words, ok := scanOpts("allow", e, args, "odpfs")
	if !ok {
		return optsExit(o)
	}
	iface, words, err := cutOn(words)
	if err != nil {
		return ruleFail(e, "allow", err)
	}
	specs, err := ruleWords(words, o)
	if err != nil {
		return ruleFail(e, "allow", err)
	}
	if o.store.set() {
		return fleetRuleEdit(e, "allow", o, iface, specs, false)
	}
	group := o.group
	if iface != "" && !o.groupSet {
		group = "" // fwd picks local-IFACE
	}
	return sendEdit(e, "allow", o, func(cx context.Context, c *control.Client) (control.EditResult, error) {
		return c.Add(cx, control.AddRequest{Group: group, Rules: specs, Interface: iface}, o.dryRun)
	})
}

func ruleFail(e env, cmd string, err error) int {
	fmt.Fprintf(e.stderr, "fwctl %s: %v\n", cmd, err)
	var re *ruleError
	if errors.As(err, &re) {
		if re.code == exitUsage {
			fmt.Fprintln(e.stderr, liveUsage[cmd])
		}
		return re.code
	}
	return exitRejected
}

func printEdit(e env, o liveOpts, res control.EditResult) {
	if o.output == "json" {
		printJSON(e.stdout, res)
		return
	}
	verb := ""
	if res.DryRun {
		verb = " (dry run)"
	}
	for _, r := range res.Skipped {
		fmt.Fprintf(e.stdout, "Skipping existing rule%s: %s (rule %d%s, group %s)\n", verb, r.Rule.Text(), r.Existing.Number, idOf(r.Existing), r.Existing.Group)
	}
	for _, r := range res.Added {
		fmt.Fprintf(e.stdout, "Rule added%s: %s (rule %d%s, group %s)%s\n", verb, r.Text, r.Number, idOf(r), r.Group, commentOf(r))
	}
	for _, r := range res.Deleted {
		fmt.Fprintf(e.stdout, "Rule deleted%s: %s (was rule %d%s, group %s)%s\n", verb, r.Text, r.Number, idOf(r), r.Group, commentOf(r))
	}
	printACLEdit(e, verb, res)
	printCut(e, res.Cut)
	for _, n := range res.Notes {
		fmt.Fprintf(e.stdout, "Note: %s\n", n)
	}
	if res.DryRun {
		if res.Diff != "" {
			fmt.Fprint(e.stdout, res.Diff)
		}
		fmt.Fprintln(e.stdout, "Dry run: nothing changed.")
	}
}

// idOf is ", id ID" for a rule that has one (a daemon before IDs sends
// none).
func idOf(r control.RuleInfo) string {
	if r.ID == "" {
		return ""
	}
	return ", id " + r.ID
}

func commentOf(r control.RuleInfo) string {
	if r.Description == "" {
		return ""
	}
	return " # " + r.Description
}

// runNotAllow answers deny, reject and limit: exit 1 with the
// explanation, or with --help the usage and the explanation, exit 0.
func runNotAllow(word string) func(e env, args []string) int {
	return func(e env, args []string) int {
		w, code := e.stderr, exitRejected
		if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "--help" || a == "-help" }) {
			w, code = e.stdout, exitOK
			fmt.Fprintf(w, "usage: fwctl %s ...: not available (security groups are allow-only)\n", word)
		}
		fmt.Fprintf(w, "fwctl %s: security groups are allow-only: there is nothing to %s, traffic no rule allows is dropped.\n"+
			"To stop allowing something, delete the rule that allows it: fwctl status numbered, then fwctl delete N (or fwctl delete allow RULE).\n"+
			"To keep an address out, deny it in the network ACL: fwctl deny from ADDR.\n", word, word)
		return code
	}
}

func runDelete(e env, args []string) int {
	o, words, ok := scanOpts("delete", e, args, "odprfs")
	if !ok {
		return optsExit(o)
	}
	if len(words) == 0 {
		fmt.Fprintf(e.stderr, "fwctl delete: missing rule: expected rule numbers, rule IDs or allow RULE\n%s\n", liveUsage["delete"])
		return exitUsage
	}
	if o.store.set() {
		return fleetDelete(e, o, words)
	}
	var req control.DeleteRequest
	switch words[0] {
	case "allow":
		iface, rest, err := cutOn(words[1:])
		if err != nil {
			return ruleFail(e, "delete", err)
		}
		specs, err := ruleWords(rest, o)
		if err != nil {
			return ruleFail(e, "delete", err)
		}
		req.Rules, req.Interface = specs, iface
	case "deny", "acl":
		if o.revoke {
			fmt.Fprintf(e.stderr, "fwctl delete: --revoke: deleting an acl entry cuts nothing; it takes rules\n%s\n", liveUsage["delete"])
			return exitUsage
		}
		req, code := deleteACLWords(e, words)
		if code != exitOK {
			return code
		}
		return runDeleteACL(e, o, req)
	case "limit":
		specs, err := ruleWords(words[1:], o)
		if err != nil {
			return ruleFail(e, "delete", err)
		}
		req.Rules = specs
	case "reject":
		return runNotAllow(words[0])(e, nil)
	default:
		for _, w := range words {
			if strings.HasPrefix(w, rules.IDPrefix) {
				if !rules.IsRuleID(w) {
					fmt.Fprintf(e.stderr, "fwctl delete: bad rule ID %q: expected %s and 12 hex digits, as fwctl status shows them\n", w, rules.IDPrefix)
					return exitUsage
				}
				req.IDs = append(req.IDs, w)
				continue
			}
			n, err := strconv.Atoi(w)
			if err != nil || n < 1 {
				fmt.Fprintf(e.stderr, "fwctl delete: bad rule number %q: expected a number from fwctl status numbered, a rule ID (%s...) from fwctl status, or allow RULE\n", w, rules.IDPrefix)
				return exitUsage
			}
			req.Numbers = append(req.Numbers, n)
		}
	}
	req.Revoke = o.revoke
	return sendEdit(e, "delete", o, func(cx context.Context, c *control.Client) (control.EditResult, error) {
		return c.Delete(cx, req, o.dryRun)
	})
}

func runReload(e env, args []string) int {
	o, words, ok := scanOpts("reload", e, args, "orf")
	if !ok {
		return optsExit(o)
	}
	if len(words) > 0 {
		fmt.Fprintf(e.stderr, "fwctl reload: unexpected %q\n%s\n", words[0], liveUsage["reload"])
		return exitUsage
	}
	c, code := dial(e, "reload", o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	res, err := c.ReloadWith(cx, control.ReloadOptions{Revoke: o.revoke})
	if err != nil {
		if o.output == "json" {
			var ae *control.Error
			if errors.As(err, &ae) {
				printJSON(e.stdout, map[string]any{"error": ae})
				return clientExit(err)
			}
		}
		return apiFail(e, "reload", err)
	}
	if o.output == "json" {
		printJSON(e.stdout, res)
		return exitOK
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	if res.Changed {
		fmt.Fprintf(e.stdout, "Rules reloaded: %s, %d rules (sha256 %.12s)\n", plural(res.Groups, "group"), res.Rules, res.Hash)
		printPending(e.stdout, res.Confirm)
	} else {
		fmt.Fprintf(e.stdout, "Rules unchanged (sha256 %.12s): nothing to do\n", res.Hash)
	}
	printCut(e, res.Cut)
	return exitOK
}

// printCut says how many established connections a change asked to
// revoke cut (nil: it was not asked to).
func printCut(e env, cut *int) {
	if cut != nil {
		fmt.Fprintf(e.stdout, "Cut %s the new rules no longer allow\n", plural(*cut, "established connection"))
	}
}

// sendEdit makes one edit through the daemon with call and prints what
// it did: the path of allow, limit, delete and delete acl.
func sendEdit(e env, cmd string, o liveOpts, call func(context.Context, *control.Client) (control.EditResult, error)) int {
	c, code := dial(e, cmd, o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	res, err := call(cx, c)
	if err != nil {
		return apiFail(e, cmd, err)
	}
	printEdit(e, o, res)
	return exitOK
}
