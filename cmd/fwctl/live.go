package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
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

// liveOpts are the options of the commands that talk to the daemon.
type liveOpts struct {
	help   bool // --help was asked for: usage printed, exit 0
	socket string
	output string // text or json
	dryRun bool
	group  string
	expire string // deny and insert: --expire DURATION
	// groupSet is true when --group was given (an add on an interface
	// without it goes to the interface's own group).
	groupSet bool
	// profiles is --profiles: the one directory of application profiles
	// to read ("": appprofile.DefaultDirs).
	profiles string
	// revoke is --revoke (delete, reload): also cut the established
	// connections the new rules no longer allow.
	revoke bool
	// force and confirm are --force and --confirm DURATION of the
	// commands that change rules (confirm.go).
	force   bool
	confirm time.Duration
}

// globalOpts are the options run() moves behind the command name when
// they come first (fwctl --dry-run allow 22): name -> takes a value.
var globalOpts = map[string]bool{"--socket": true, "-o": true, "--output": true, "--dry-run": false, "--group": true, "--expire": true, "--profiles": true, "--revoke": false, "--force": false, "--confirm": true}

// hoistGlobals turns "fwctl --dry-run allow 22" into "fwctl allow
// --dry-run 22".
func hoistGlobals(args []string) []string {
	var opts []string
	i := 0
	for i < len(args) {
		name, _, hasValue := strings.Cut(args[i], "=")
		takes, ok := globalOpts[name]
		if !ok {
			break
		}
		opts = append(opts, args[i])
		i++
		if takes && !hasValue && i < len(args) {
			opts = append(opts, args[i])
			i++
		}
	}
	if len(opts) == 0 || i >= len(args) {
		return args
	}
	out := append([]string{args[i]}, opts...)
	return append(out, args[i+1:]...)
}

// scanOpts takes the options out of args wherever they are. what says
// which the command takes: "o" output, "d" dry-run and group, "e"
// expire.
// optsExit is the exit code when scanOpts stopped: 0 after --help.
func optsExit(o liveOpts) int {
	if o.help {
		return exitOK
	}
	return exitUsage
}

func scanOpts(cmd string, e env, args []string, what string) (liveOpts, []string, bool) {
	o := liveOpts{socket: control.DefaultSocket, output: "text", group: control.DefaultGroup}
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			words = append(words, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || len(a) == 1 || isNumber(a) {
			words = append(words, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		takes, known := globalOpts[name]
		switch {
		case name == "-h" || name == "--help" || name == "-help":
			fmt.Fprintln(e.stdout, liveUsage[cmd])
			o.help = true
			return o, nil, false
		case !known || (name == "-o" || name == "--output") && !strings.Contains(what, "o") ||
			(name == "--dry-run" || name == "--group") && !strings.Contains(what, "d") ||
			name == "--expire" && !strings.Contains(what, "e") ||
			name == "--profiles" && !strings.Contains(what, "p") ||
			name == "--revoke" && !strings.Contains(what, "r") ||
			(name == "--force" || name == "--confirm") && !strings.Contains(what, "f"):
			fmt.Fprintf(e.stderr, "fwctl %s: unknown option %s\n%s\n", cmd, name, liveUsage[cmd])
			return o, nil, false
		}
		if takes && !hasVal {
			if i+1 >= len(args) {
				fmt.Fprintf(e.stderr, "fwctl %s: %s needs a value\n", cmd, name)
				return o, nil, false
			}
			i++
			val = args[i]
		}
		if !scanSafety(cmd, e, name, val, hasVal, &o) {
			return o, nil, false
		}
		switch name {
		case "--socket":
			o.socket = val
		case "--profiles":
			o.profiles = val
		case "-o", "--output":
			if val != "text" && val != "json" {
				fmt.Fprintf(e.stderr, "fwctl %s: bad output %q: expected text or json\n", cmd, val)
				return o, nil, false
			}
			o.output = val
		case "--dry-run":
			if hasVal {
				b, err := strconv.ParseBool(val)
				if err != nil {
					fmt.Fprintf(e.stderr, "fwctl %s: bad --dry-run value %q\n", cmd, val)
					return o, nil, false
				}
				o.dryRun = b
			} else {
				o.dryRun = true
			}
		case "--revoke":
			if hasVal {
				b, err := strconv.ParseBool(val)
				if err != nil {
					fmt.Fprintf(e.stderr, "fwctl %s: bad --revoke value %q\n", cmd, val)
					return o, nil, false
				}
				o.revoke = b
			} else {
				o.revoke = true
			}
		case "--expire":
			if !checkExpire(cmd, e, val) {
				return o, nil, false
			}
			o.expire = val
		case "--group":
			if strings.TrimSpace(val) == "" {
				fmt.Fprintf(e.stderr, "fwctl %s: bad --group: group name is empty: expected a name\n", cmd)
				return o, nil, false
			}
			if err := rules.CheckText("group name", val); err != nil {
				fmt.Fprintf(e.stderr, "fwctl %s: bad --group %q: %v\n", cmd, val, err)
				return o, nil, false
			}
			o.group, o.groupSet = val, true
		}
	}
	return o, words, true
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

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
       fwctl delete [--dry-run] [--revoke] [--profiles DIR] [-o json] allow|limit RULE
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
	o, words, ok := scanOpts("allow", e, args, "odpf")
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
	group := o.group
	if iface != "" && !o.groupSet {
		group = "" // fwd picks local-IFACE
	}
	c, code := dial(e, "allow", o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	res, err := c.Add(cx, control.AddRequest{Group: group, Rules: specs, Interface: iface}, o.dryRun)
	if err != nil {
		return apiFail(e, "allow", err)
	}
	printEdit(e, o, res)
	return exitOK
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
	o, words, ok := scanOpts("delete", e, args, "odprf")
	if !ok {
		return optsExit(o)
	}
	if len(words) == 0 {
		fmt.Fprintf(e.stderr, "fwctl delete: missing rule: expected rule numbers, rule IDs or allow RULE\n%s\n", liveUsage["delete"])
		return exitUsage
	}
	var req control.DeleteRequest
	switch words[0] {
	case "allow":
		specs, err := ruleWords(words[1:], o)
		if err != nil {
			return ruleFail(e, "delete", err)
		}
		req.Rules = specs
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
	c, code := dial(e, "delete", o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	res, err := c.Delete(cx, req, o.dryRun)
	if err != nil {
		return apiFail(e, "delete", err)
	}
	printEdit(e, o, res)
	return exitOK
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

func runStatus(e env, args []string) int {
	o, words, ok := scanOpts("status", e, args, "o")
	if !ok {
		return optsExit(o)
	}
	mode := ""
	if len(words) > 1 || len(words) == 1 && words[0] != "numbered" && words[0] != "verbose" {
		fmt.Fprintf(e.stderr, "fwctl status: unexpected %q\n%s\n", strings.Join(words, " "), liveUsage["status"])
		return exitUsage
	}
	if len(words) == 1 {
		mode = words[0]
	}
	c, code := dial(e, "status", o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	st, err := c.Status(cx)
	if err != nil {
		return apiFail(e, "status", err)
	}
	if o.output == "json" {
		printJSON(e.stdout, st)
		return exitOK
	}
	printStatus(e.stdout, st, mode)
	return exitOK
}

func printStatus(w io.Writer, st control.Status, mode string) {
	if a := st.Audit; a != nil && !a.Enforcing {
		fmt.Fprintf(w, "Status: %s, AUDIT MODE: NOT ENFORCING (%s): every new connection is accepted; %d would have been dropped (fwctl suggest)\n", st.Status, a.Why, auditTotal(a))
	} else {
		fmt.Fprintf(w, "Status: %s\n", st.Status)
	}
	printSafety(w, st.Safety, mode)
	if mode == "verbose" {
		printStatusDetails(w, st)
	} else if st.Hash != "" {
		fmt.Fprintf(w, "Rules: %s (sha256 %.12s)\n", st.RulesPath, st.Hash)
	}
	if len(st.ACL) > 0 {
		printACLTable(w, st.ACL, mode)
	}
	if len(st.Rules) == 0 {
		fmt.Fprintln(w, "\nNo rules: every new incoming connection is dropped.")
		return
	}
	printRuleTable(w, st.Rules, mode)
}

// printStatusDetails prints what status verbose adds above the rules: the
// file, the defaults, the reloads and the counters.
func printStatusDetails(w io.Writer, st control.Status) {
	fmt.Fprintf(w, "Rules: %s\n", st.RulesPath)
	fmt.Fprintf(w, "Hash: sha256 %s\n", st.Hash)
	out := st.DefaultOutgoing + " (outgoing)"
	if len(st.OpenEgress) > 0 {
		out = fmt.Sprintf("allow (outgoing: group %s omits egress)", st.OpenEgress[0])
		if len(st.OpenEgress) > 1 {
			out = fmt.Sprintf("allow (outgoing: groups %s omit egress)", strings.Join(st.OpenEgress, ", "))
		}
	}
	fmt.Fprintf(w, "Default: %s (incoming), %s\n", st.DefaultIncoming, out)
	r := st.Reloads
	fmt.Fprintf(w, "Reloads: %d ok, %d failed, %d unchanged\n", r.OK, r.Failed, r.Unchanged)
	if r.LastError != nil {
		fmt.Fprintf(w, "Last failure: %s\n", r.LastError.Message)
	}
	if len(st.Counters) > 0 {
		keys := slices.Sorted(maps.Keys(st.Counters))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, st.Counters[k])
		}
		fmt.Fprintf(w, "Counters: %s\n", strings.Join(parts, ", "))
	}
	printQueues(w, st.Queues)
	printLimits(w, st)
}

// printRuleTable prints the rules as ufw's status does: To, Action, From,
// then the group and the rule's ID, with the number in front (numbered)
// or the hits after (verbose).
func printRuleTable(w io.Writer, rs []control.RuleInfo, mode string) {
	pre, preHead := "", ""
	if mode == "numbered" {
		pre, preHead = "[%2d] ", "     "
	}
	idw := len("ID")
	for _, r := range rs {
		idw = max(idw, len(r.ID))
	}
	fmt.Fprintln(w)
	head := fmt.Sprintf("%s%-26s %-11s %-26s %-10s %-*s", preHead, "To", "Action", "From", "Group", idw, "ID")
	line := fmt.Sprintf("%s%-26s %-11s %-26s %-10s %-*s", preHead, "--", "------", "----", "-----", idw, "--")
	if mode == "verbose" {
		head += " Hits"
		line += " ----"
	}
	fmt.Fprintln(w, strings.TrimRight(head, " "))
	fmt.Fprintln(w, strings.TrimRight(line, " "))
	for _, r := range rs {
		to, action, from := ruleColumns(r, mode)
		if len(r.Interfaces) > 0 {
			to += " on " + strings.Join(r.Interfaces, ",") // ufw's "22/tcp on eth1"
		}
		row := ""
		if pre != "" {
			row = fmt.Sprintf(pre, r.Number)
		}
		row += fmt.Sprintf("%-26s %-11s %-26s %-10s %-*s", to, action, from, r.Group, idw, r.ID)
		if mode == "verbose" {
			hits := "-"
			if r.Hits != nil {
				hits = strconv.FormatUint(*r.Hits, 10)
			}
			row += fmt.Sprintf(" %4s", hits)
		}
		if r.Description != "" {
			row += " # " + r.Description
		}
		fmt.Fprintln(w, strings.TrimRight(row, " "))
	}
}

// printACLTable prints the ACL above the groups' rules: each entry by
// its own number (the one the ACL is evaluated by, lowest first), its
// action and direction, then To and From as for rules; hits in verbose;
// the expiry and description after.
func printACLTable(w io.Writer, acl []control.ACLInfo, mode string) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ACL (before the groups: lowest number first, the first entry that matches decides):")
	fmt.Fprintln(w)
	head := fmt.Sprintf("%-7s %-26s %-11s %-26s", "Number", "To", "Action", "From")
	line := fmt.Sprintf("%-7s %-26s %-11s %-26s", "------", "--", "------", "----")
	if mode == "verbose" {
		head += " Hits"
		line += " ----"
	}
	fmt.Fprintln(w, strings.TrimRight(head, " "))
	fmt.Fprintln(w, strings.TrimRight(line, " "))
	for _, a := range acl {
		to, action, from := ruleColumns(control.RuleInfo{RuleSpec: a.RuleSpec}, "numbered")
		action = strings.Replace(action, "ALLOW", strings.ToUpper(a.Action), 1)
		row := fmt.Sprintf("%-7s %-26s %-11s %-26s", fmt.Sprintf("[%d]", a.Number), to, action, from)
		if mode == "verbose" {
			hits := "-"
			if a.Hits != nil {
				hits = strconv.FormatUint(*a.Hits, 10)
			}
			row += fmt.Sprintf(" %4s", hits)
		}
		var notes []string
		switch {
		case a.Expired:
			notes = append(notes, "expired "+a.Expires)
		case a.Expires != "":
			notes = append(notes, "until "+a.Expires)
		}
		if a.Description != "" {
			notes = append(notes, a.Description)
		}
		if len(notes) > 0 {
			row += " # " + strings.Join(notes, "; ")
		}
		fmt.Fprintln(w, strings.TrimRight(row, " "))
	}
}

// ruleColumns renders a rule as ufw's To, Action and From columns.
func ruleColumns(r control.RuleInfo, mode string) (to, action, from string) {
	what := portText(r.RuleSpec)
	peers := peerText(r.Peers)
	if r.Dir == "out" {
		action = "ALLOW OUT"
		switch {
		case peers == "Anywhere" && what == "":
			to = "Anywhere"
		case peers == "Anywhere":
			to = what
		case what == "":
			to = peers
		default:
			to = peers + " " + what
		}
		return to, action, "Anywhere (out)"
	}
	action = "ALLOW"
	if r.Limit != nil {
		action = "LIMIT"
	}
	if mode != "" {
		action += " IN"
	}
	to = what
	if to == "" {
		to = "Anywhere"
	}
	return to, action, peers
}

func portText(s control.RuleSpec) string {
	switch {
	case s.Proto == "all":
		return ""
	case s.Proto == "tcp" || s.Proto == "udp":
		if len(s.Ports) == 0 {
			return "Anywhere/" + s.Proto
		}
		ports := make([]string, len(s.Ports))
		for i, p := range s.Ports {
			ports[i] = strings.Replace(p, "-", ":", 1)
		}
		return strings.Join(ports, ",") + "/" + s.Proto
	case s.ICMP != nil:
		t := fmt.Sprintf("%s type %d", s.Proto, s.ICMP.Type)
		if s.ICMP.Code != nil {
			t += fmt.Sprintf(" code %d", *s.ICMP.Code)
		}
		return t
	}
	return "Anywhere/" + s.Proto
}

func peerText(peers []string) string {
	out := make([]string, len(peers))
	for i, p := range peers {
		switch p {
		case "any":
			out[i] = "Anywhere"
		case "any4":
			out[i] = "Anywhere (v4)"
		case "any6":
			out[i] = "Anywhere (v6)"
		default:
			out[i] = p
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return strings.Join(out, ",")
}

// printCut says how many established connections a change asked to
// revoke cut (nil: it was not asked to).
func printCut(e env, cut *int) {
	if cut != nil {
		fmt.Fprintf(e.stdout, "Cut %s the new rules no longer allow\n", plural(*cut, "established connection"))
	}
}

// printQueues prints each queue's health (status verbose): "Queues: 0
// ok, 1 restarted 2 times".
func printQueues(w io.Writer, qs []control.QueueHealth) {
	if len(qs) == 0 {
		return
	}
	parts := make([]string, len(qs))
	for i, q := range qs {
		parts[i] = fmt.Sprintf("%d %s", q.Queue, q.Health)
	}
	fmt.Fprintf(w, "Queues: %s\n", strings.Join(parts, ", "))
}
