package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/rules"
)

// The network-ACL commands, in ufw's words:
//
//	deny [--expire D] [in|out] RULE [comment TEXT]
//	insert N deny|allow [--expire D] [in|out] RULE [comment TEXT]
//	delete deny [in|out] RULE
//	delete acl [in|out] N...
//
// RULE is what allow takes. deny appends an entry (the next free
// number, see lifecycle.NextACLNumber); insert N puts it at number N,
// which must be free: entries are never renumbered.

func init() {
	liveUsage["deny"] = `usage: fwctl deny [--expire DURATION] [--dry-run] [-o json] [in|out] RULE [comment TEXT]
RULE is what allow takes: PORT[/PROTO], SERVICE, or [proto PROTO] [from ADDR] [to ADDR] [port PORT]
(fwctl deny from 203.0.113.9; fwctl deny from 198.51.100.0/24 to any port 22 proto tcp; fwctl deny out to 192.0.2.66).
The entry goes to the network ACL, after its other entries; --expire 10m makes it lift itself.`
	liveUsage["insert"] = `usage: fwctl insert N deny|allow [--expire DURATION] [--dry-run] [-o json] [in|out] RULE [comment TEXT]
N is the ACL entry's number (1-32766, lowest first decides); it must be free.`
}

func runDeny(e env, args []string) int {
	o, words, ok := scanOpts("deny", e, args, "odef")
	if !ok {
		return optsExit(o)
	}
	return addACL(e, "deny", o, 0, "deny", words)
}

func runInsert(e env, args []string) int {
	o, words, ok := scanOpts("insert", e, args, "odef")
	if !ok {
		return optsExit(o)
	}
	if len(words) < 2 {
		fmt.Fprintf(e.stderr, "fwctl insert: missing number and action: expected insert N deny|allow RULE\n%s\n", liveUsage["insert"])
		return exitUsage
	}
	n, err := strconv.Atoi(words[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl insert: bad number %q: expected an acl entry number %d-%d\n%s\n", words[0], rules.MinACLNumber, rules.MaxACLNumber, liveUsage["insert"])
		return exitUsage
	}
	if n < rules.MinACLNumber || n > rules.MaxACLNumber {
		fmt.Fprintf(e.stderr, "fwctl insert: acl entry number %d out of range: expected %d-%d\n", n, rules.MinACLNumber, rules.MaxACLNumber)
		return exitRejected
	}
	action := words[1]
	switch action {
	case "deny", "allow":
	case "reject", "limit":
		fmt.Fprintf(e.stderr, "fwctl insert: %q: the network ACL has allow and deny entries; fwd drops, it never rejects or limits\n", action)
		return exitRejected
	default:
		fmt.Fprintf(e.stderr, "fwctl insert: unexpected %q after the number: expected deny or allow\n%s\n", action, liveUsage["insert"])
		return exitUsage
	}
	return addACL(e, "insert", o, n, action, words[2:])
}

// addACL adds the entries a RULE means (two for a port without a
// protocol: tcp and udp), each with its own number.
func addACL(e env, cmd string, o liveOpts, number int, action string, words []string) int {
	specs, err := parseRuleWords(words)
	if err != nil {
		return ruleFail(e, cmd, err)
	}
	if number != 0 && len(specs) > 1 {
		fmt.Fprintf(e.stderr, "fwctl %s: %q means %d entries (tcp and udp), and number %d is one: give a protocol (/tcp, proto tcp)\n", cmd, strings.Join(words, " "), len(specs), number)
		return exitRejected
	}
	c, code := dial(e, cmd, o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	for _, s := range specs {
		req := control.ACLAddRequest{Number: number, ACLSpec: control.ACLSpec{Action: action, RuleSpec: s}, Expire: o.expire}
		res, err := c.AddACL(cx, req, o.dryRun)
		if err != nil {
			return apiFail(e, cmd, err)
		}
		printEdit(e, o, res)
	}
	return exitOK
}

// deleteACLWords reads what follows "delete deny" or "delete acl".
func deleteACLWords(e env, words []string) (control.ACLDeleteRequest, int) {
	var req control.ACLDeleteRequest
	if words[0] == "deny" {
		specs, err := parseRuleWords(words[1:])
		if err != nil {
			return req, ruleFail(e, "delete", err)
		}
		for _, s := range specs {
			req.Entries = append(req.Entries, control.ACLSpec{Action: "deny", RuleSpec: s})
		}
		return req, exitOK
	}
	nums := words[1:]
	if len(nums) > 0 && (nums[0] == "in" || nums[0] == "out") {
		req.Dir, nums = nums[0], nums[1:]
	}
	if len(nums) == 0 {
		fmt.Fprintf(e.stderr, "fwctl delete: missing acl entry number: expected delete acl [in|out] N...\n%s\n", liveUsage["delete"])
		return req, exitUsage
	}
	for _, w := range nums {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 {
			fmt.Fprintf(e.stderr, "fwctl delete: bad acl entry number %q: expected a number from fwctl status (the ACL's Number column)\n%s\n", w, liveUsage["delete"])
			return req, exitUsage
		}
		req.Numbers = append(req.Numbers, n)
	}
	return req, exitOK
}

// runDeleteACL sends a delete of ACL entries.
func runDeleteACL(e env, o liveOpts, req control.ACLDeleteRequest) int {
	return sendEdit(e, "delete", o, func(cx context.Context, c *control.Client) (control.EditResult, error) {
		return c.DeleteACL(cx, req, o.dryRun)
	})
}

// checkExpire reads --expire: a duration, such as 10m, 600s or 24h.
func checkExpire(cmd string, e env, val string) bool {
	d, err := time.ParseDuration(val)
	if err != nil || d <= 0 || d > lifecycle.MaxExpire {
		fmt.Fprintf(e.stderr, "fwctl %s: bad --expire %q: expected a duration such as 10m, 600s or 24h (more than 0, at most %s)\n", cmd, val, lifecycle.MaxExpire)
		return false
	}
	return true
}

// printACLEdit prints what an ACL edit did, after the rules' lines.
func printACLEdit(e env, verb string, res control.EditResult) {
	for _, a := range res.ACLExpired {
		fmt.Fprintf(e.stdout, "Entry expired, removed%s: acl %s %s%s\n", verb, dirKey(a.Dir), a.Text, aclComment(a))
	}
	for _, a := range res.ACLSkipped {
		fmt.Fprintf(e.stdout, "Skipping existing entry%s: acl %s %s%s\n", verb, dirKey(a.Dir), a.Text, aclComment(a))
	}
	for _, a := range res.ACLAdded {
		fmt.Fprintf(e.stdout, "Entry added%s: acl %s %s%s\n", verb, dirKey(a.Dir), a.Text, aclComment(a))
	}
	for _, a := range res.ACLDeleted {
		fmt.Fprintf(e.stdout, "Entry deleted%s: acl %s %s%s\n", verb, dirKey(a.Dir), a.Text, aclComment(a))
	}
	if res.Revoked > 0 {
		fmt.Fprintf(e.stdout, "Cut %s it matched\n", plural(res.Revoked, "established connection"))
	}
}

func dirKey(d string) string {
	if d == "out" {
		return "egress"
	}
	return "ingress"
}

func aclComment(a control.ACLInfo) string {
	if a.Description == "" {
		return ""
	}
	return " # " + a.Description
}
