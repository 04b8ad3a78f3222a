package main

import (
	"fmt"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/fleet"
)

// allow and delete allow RULE in fleet mode: with a store named (--store
// or $FWD_STORE), the rule goes to (or leaves) group G of the fleet's
// policy, by compare-and-swap on that group's key.

// fleetRuleEdit adds (or, with del, deletes) the rules of specs in group
// o.group of the store's policy and prints what it did.
func fleetRuleEdit(e env, cmd string, o liveOpts, iface string, specs []control.RuleSpec, del bool) int {
	switch {
	case !o.groupSet:
		fmt.Fprintf(e.stderr, "fwctl %s: fleet mode (a store is named): give the group the rule belongs to: --group G\n%s\n", cmd, liveUsage[cmd])
		return exitUsage
	case iface != "":
		fmt.Fprintf(e.stderr, "fwctl %s: fleet mode: \"on %s\" is not for a fleet group (hosts differ in interfaces): write the rule without it\n", cmd, iface)
		return exitUsage
	case o.confirm > 0 || o.force || o.revoke:
		fmt.Fprintf(e.stderr, "fwctl %s: fleet mode: --confirm, --force and --revoke are for one running fwd, not the store\n", cmd)
		return exitUsage
	}
	rs := make([]fleet.DirRule, 0, len(specs))
	for _, spec := range specs {
		r, dir, err := spec.Rule()
		if err != nil {
			fmt.Fprintf(e.stderr, "fwctl %s: %v\n", cmd, err)
			return exitRejected
		}
		if r.Limit != nil {
			fmt.Fprintf(e.stderr, "fwctl %s: fleet mode: limit rules are written in the policy file (fwctl fleet export, edit, fwctl fleet apply)\n", cmd)
			return exitRejected
		}
		rs = append(rs, fleet.DirRule{Dir: dir, Rule: r})
	}
	s, code := openStore(e, cmd, o.store)
	if s == nil {
		return code
	}
	defer s.close()
	edit := s.admin.AddRule
	if del {
		edit = s.admin.DeleteRule
	}
	res, err := edit(s.ctx, o.group, rs, o.dryRun)
	if err != nil {
		return storeFail(e, cmd, o.store, err)
	}
	printFleetEdit(e, o, res)
	return exitOK
}

func printFleetEdit(e env, o liveOpts, res fleet.EditResult) {
	if o.output == "json" {
		printJSON(e.stdout, res)
		return
	}
	verb := ""
	if res.DryRun {
		verb = " (dry run)"
	}
	for _, r := range res.Skipped {
		fmt.Fprintf(e.stdout, "Skipping existing rule%s: %s (group %s)\n", verb, r, res.Group)
	}
	for _, r := range res.Added {
		fmt.Fprintf(e.stdout, "Rule added%s: %s (group %s)\n", verb, r, res.Group)
	}
	for _, r := range res.Deleted {
		fmt.Fprintf(e.stdout, "Rule deleted%s: %s (group %s)\n", verb, r, res.Group)
	}
	if res.DryRun {
		fmt.Fprint(e.stdout, res.Diff)
		fmt.Fprintln(e.stdout, "Dry run: nothing changed.")
		return
	}
	if res.Changed {
		fmt.Fprintf(e.stdout, "Stored %s (store revision %d)\n", res.Key, res.Revision)
	}
}

// fleetDelete is delete in fleet mode: delete allow RULE --group G.
func fleetDelete(e env, o liveOpts, words []string) int {
	if words[0] != "allow" {
		fmt.Fprintf(e.stderr, "fwctl delete: fleet mode: delete by rule, delete allow RULE --group G (rule numbers and IDs are one fwd's; the fleet has no acl)\n%s\n", liveUsage["delete"])
		return exitUsage
	}
	specs, err := ruleWords(words[1:], o)
	if err != nil {
		return ruleFail(e, "delete", err)
	}
	return fleetRuleEdit(e, "delete", o, "", specs, true)
}
