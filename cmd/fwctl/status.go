package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/control"
)

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
	printContainers(e.stdout, st.Containers)
	return exitOK
}

func printStatus(w io.Writer, st control.Status, mode string) {
	if a := st.Audit; a != nil && !a.Enforcing {
		fmt.Fprintf(w, "Status: %s, AUDIT MODE: NOT ENFORCING (%s): every new connection is accepted; %d would have been dropped (fwctl suggest)\n", st.Status, a.Why, auditTotal(a))
	} else {
		fmt.Fprintf(w, "Status: %s\n", st.Status)
	}
	printSafety(w, st.Safety, mode)
	printFleet(w, st.Fleet)
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

// printFleet says, in fleet mode, which snapshot of the store fwd
// enforces and how long ago the store last answered.
func printFleet(w io.Writer, f *control.FleetStatus) {
	if f == nil {
		return
	}
	fmt.Fprintf(w, "Fleet: host %s, store %s, revision %d (hash %.12s), store last answered %s ago\n",
		f.Host, f.Store, f.Revision, f.Hash, time.Duration(f.StalenessSeconds*float64(time.Second)).Round(time.Second))
	if f.Error != "" {
		fmt.Fprintf(w, "Fleet: the last snapshot was refused, the previous one stays: %s\n", f.Error)
	}
}
