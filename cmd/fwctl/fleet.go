package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/fleet"
	"github.com/fwd-project/fwd/internal/rules"
)

// fwctl fleet ...: fleet mode's admin commands, against etcd (--store)
// rather than a running fwd. allow and delete with --group in fleet mode
// are in fleetedit.go.

func init() {
	var b strings.Builder
	for i, c := range fleetCommands() {
		lead := "usage: "
		if i > 0 {
			lead = "       "
		}
		fmt.Fprintf(&b, "%sfwctl fleet %s\n", lead, c.usage)
	}
	for _, c := range fleetCommands() {
		fmt.Fprintf(&b, "%s: %s\n", c.name, c.summary)
	}
	b.WriteString("Rules of one group: fwctl allow RULE --group G, fwctl delete allow RULE --group G with a store named.\n")
	liveUsage["fleet"] = b.String() + storeUsage
}

// fleetCommand is one fwctl fleet subcommand: its usage and summary, the
// options it takes (as scanFleetOpts's what), how many words (max -1:
// any), and what it does.
type fleetCommand struct {
	name, usage, summary string
	what                 string
	min, max             int
	run                  func(e env, s *storeSession, o fleetOpts, words []string) error
}

func fleetCommands() []fleetCommand {
	return []fleetCommand{
		{"apply", "apply [--dry-run] [--repair] [-o json] FILE", "make the store's policy FILE's groups and prefix lists, in one transaction (- reads standard input); --repair writes over values in the store that do not validate", "odr", 1, 1, fleetApply},
		{"export", "export", "print the store's policy as one rules file", "", 0, 0, fleetExport},
		{"assign", "assign [-o json] HOST GROUP...", "attach HOST to exactly these groups (each must exist)", "o", 2, -1, fleetAssign},
		{"unassign", "unassign [-o json] HOST", "attach HOST to no group", "o", 1, 1, fleetAssign},
		{"hosts", "hosts [-o json]", "every host assigned or alive: its groups, addresses, and whether its lease is alive", "o", 0, 0, fleetHosts},
		{"members", "members [-o json] GROUP", "the live members of GROUP and their addresses (what group:GROUP means)", "o", 1, 1, fleetMembers},
		{"status", "status [-o json]", "what each host enforces: store revision, lag behind the store, when applied, hash, error; ok when its table is the one the store means for it now, else behind, stale, error, starting or down", "o", 0, 0, fleetStatus},
	}
}

// fleetOpts are the options of fwctl fleet's subcommands.
type fleetOpts struct {
	store  storeOpts
	output string
	dryRun bool
	repair bool
	help   bool
}

// scanFleetOpts takes the options out of args; what says which beside
// the store's the subcommand takes: "o" -o json, "d" --dry-run, "r"
// --repair. On false, the exit code is optsExitFleet's.
func scanFleetOpts(e env, cmd string, args []string, what string) (fleetOpts, []string, bool) {
	o := fleetOpts{output: "text"}
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			words = append(words, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			words = append(words, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case name == "-h" || name == "--help" || name == "-help":
			fmt.Fprintln(e.stdout, liveUsage["fleet"])
			o.help = true
			return o, nil, false
		case name == "--dry-run" && strings.Contains(what, "d"):
			o.dryRun = !hasVal || val == "true"
			continue
		case name == "--repair" && strings.Contains(what, "r"):
			o.repair = !hasVal || val == "true"
			continue
		case (name == "-o" || name == "--output") && strings.Contains(what, "o"), isStoreOpt(name):
		default:
			fmt.Fprintf(e.stderr, "fwctl %s: unknown option %s\n%s\n", cmd, name, liveUsage["fleet"])
			return o, nil, false
		}
		if !hasVal {
			if i+1 >= len(args) {
				fmt.Fprintf(e.stderr, "fwctl %s: %s needs a value\n", cmd, name)
				return o, nil, false
			}
			i++
			val = args[i]
		}
		if name == "-o" || name == "--output" {
			if val != "text" && val != "json" {
				fmt.Fprintf(e.stderr, "fwctl %s: bad output %q: expected text or json\n", cmd, val)
				return o, nil, false
			}
			o.output = val
		} else if !o.store.take(e, cmd, name, val) {
			return o, nil, false
		}
	}
	o.store.fromEnv(e)
	return o, words, true
}

func runFleet(e env, args []string) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(e.stdout, liveUsage["fleet"])
		return exitOK
	}
	name := ""
	for i := 0; i < len(args); i++ { // the first word (options may come first)
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			name, args = a, append(args[:i:i], args[i+1:]...)
			break
		}
		if (isStoreOpt(a) || a == "-o" || a == "--output") && !strings.Contains(a, "=") {
			i++ // its value
		}
	}
	i := slices.IndexFunc(fleetCommands(), func(c fleetCommand) bool { return c.name == name })
	if i < 0 {
		if name == "" {
			fmt.Fprintf(e.stderr, "fwctl fleet: missing subcommand\n%s\n", liveUsage["fleet"])
		} else {
			fmt.Fprintf(e.stderr, "fwctl fleet: unknown subcommand %q\n%s\n", name, liveUsage["fleet"])
		}
		return exitUsage
	}
	sub := fleetCommands()[i]
	cmd := "fleet " + name
	o, words, ok := scanFleetOpts(e, cmd, args, sub.what)
	if !ok {
		if o.help {
			return exitOK
		}
		return exitUsage
	}
	if len(words) < sub.min || sub.max >= 0 && len(words) > sub.max {
		fmt.Fprintf(e.stderr, "fwctl %s: expected fwctl fleet %s\n", cmd, sub.usage)
		return exitUsage
	}
	if name == "unassign" {
		words = words[:1]
	}
	s, code := openStore(e, cmd, o.store)
	if s == nil {
		return code
	}
	defer s.close()
	if err := sub.run(e, s, o, words); err != nil {
		return storeFail(e, cmd, o.store, err)
	}
	return exitOK
}

func fleetApply(e env, s *storeSession, o fleetOpts, words []string) error {
	name := words[0]
	src, err := readPolicyFile(e, name)
	if err != nil {
		return err
	}
	if name == "-" {
		name = "(stdin)"
	}
	res, err := s.admin.Apply(s.ctx, name, src, fleet.ApplyOptions{DryRun: o.dryRun, Repair: o.repair})
	if err != nil {
		return err
	}
	if o.output == "json" {
		printJSON(e.stdout, res)
		return nil
	}
	printApply(e.stdout, name, res)
	return nil
}

func readPolicyFile(e env, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(e.stdin, rules.DefaultMaxFileBytes+1))
	}
	return rules.ReadFile(name, 0)
}

func printApply(w io.Writer, name string, res fleet.ApplyResult) {
	if !res.Changed {
		fmt.Fprintf(w, "Policy unchanged (serial %d, store revision %d): nothing to do\n", res.Serial, res.Revision)
		return
	}
	if res.DryRun {
		fmt.Fprint(w, res.Diff)
	}
	for _, c := range res.Changes {
		if c.Kind != "serial" {
			fmt.Fprintf(w, "%-6s %s %s\n", c.Action, strings.ReplaceAll(c.Kind, "_", " "), c.Name)
		}
	}
	if res.DryRun {
		fmt.Fprintf(w, "Would apply %s: %s in one transaction (serial %d)\n", name, plural(len(res.Changes)-1, "key"), res.Serial)
		fmt.Fprintln(w, "Dry run: nothing changed.")
		return
	}
	fmt.Fprintf(w, "Applied %s: %s in one transaction (serial %d, store revision %d)\n", name, plural(len(res.Changes)-1, "key"), res.Serial, res.Revision)
}

func fleetExport(e env, s *storeSession, _ fleetOpts, _ []string) error {
	text, _, err := s.admin.Export(s.ctx)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(text)
	return err
}

func fleetAssign(e env, s *storeSession, o fleetOpts, words []string) error {
	host, groups := words[0], slices.Compact(slices.Sorted(slices.Values(words[1:]))) // as stored
	if err := s.admin.Assign(s.ctx, host, groups...); err != nil {
		return err
	}
	if o.output == "json" {
		printJSON(e.stdout, map[string]any{"host": host, "groups": append([]string{}, groups...)})
		return nil
	}
	if len(groups) == 0 {
		fmt.Fprintf(e.stdout, "Host %s assigned no group\n", host)
		return nil
	}
	fmt.Fprintf(e.stdout, "Host %s assigned %s\n", host, strings.Join(groups, ", "))
	return nil
}

func fleetHosts(e env, s *storeSession, o fleetOpts, _ []string) error {
	hosts, rev, err := s.admin.Hosts(s.ctx)
	if err != nil {
		return err
	}
	if o.output == "json" {
		printJSON(e.stdout, map[string]any{"revision": rev, "hosts": hosts})
		return nil
	}
	rows := [][]string{{"Host", "Alive", "Groups", "Addresses"}}
	for _, h := range hosts {
		rows = append(rows, []string{h.Name, yesNo(h.Alive), listOr(h.Groups, "-"), joinAddrs(h.Addrs)})
	}
	writeTable(e.stdout, rows)
	for _, h := range hosts {
		for _, p := range h.Problems {
			fmt.Fprintf(e.stdout, "Note: %s\n", p)
		}
	}
	return nil
}

func fleetMembers(e env, s *storeSession, o fleetOpts, words []string) error {
	members, rev, err := s.admin.Members(s.ctx, words[0])
	if err != nil {
		return err
	}
	if o.output == "json" {
		printJSON(e.stdout, map[string]any{"revision": rev, "group": words[0], "members": members})
		return nil
	}
	if len(members) == 0 {
		fmt.Fprintf(e.stdout, "Group %s has no live member: a rule naming group:%s matches nothing\n", words[0], words[0])
		return nil
	}
	rows := [][]string{{"Host", "Addresses"}}
	for _, m := range members {
		rows = append(rows, []string{m.Host, joinAddrs(m.Addrs)})
	}
	writeTable(e.stdout, rows)
	return nil
}

func fleetStatus(e env, s *storeSession, o fleetOpts, _ []string) error {
	rep, err := s.admin.Status(s.ctx)
	if err != nil {
		return err
	}
	if o.output == "json" {
		printJSON(e.stdout, rep)
		return nil
	}
	serial := rep.Serial
	if serial == "" {
		serial = "none"
	}
	fmt.Fprintf(e.stdout, "Store revision %d, policy serial %s\n", rep.Revision, serial)
	rows := [][]string{{"Host", "State", "Revision", "Lag", "Applied", "Hash", "Error"}}
	for _, h := range rep.Hosts {
		row := []string{h.Host, hostState(h), "-", "-", "-", "-", h.Error}
		if h.Reported {
			row[2], row[3] = strconv.FormatInt(h.Revision, 10), strconv.FormatInt(h.Lag, 10)
			if !h.Applied.IsZero() {
				row[4] = h.Age.Round(time.Second).String() + " ago"
			}
			if h.Hash != "" {
				row[5] = fmt.Sprintf("%.12s", h.Hash)
			}
		}
		rows = append(rows, row)
	}
	writeTable(e.stdout, rows)
	return nil
}

// hostState is one word for a host's state in fleet status.
func hostState(h fleet.HostStatus) string {
	switch {
	case !h.Alive:
		return "down"
	case !h.Reported:
		return "starting"
	case h.Stale:
		return "stale" // enforcing its last good snapshot; Error says why
	case h.Error != "":
		return "error"
	case h.Want != "" && !h.InSync:
		return "behind" // its table is not yet the one the store means
	}
	return "ok"
}

// writeTable writes rows in aligned columns, the first row a header
// underlined with dashes; the last column is not padded.
func writeTable(w io.Writer, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(r []string) {
		var b strings.Builder
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", width[i], c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(rows[0])
	dashes := make([]string, len(rows[0]))
	for i, c := range rows[0] {
		dashes[i] = strings.Repeat("-", len(c))
	}
	line(dashes)
	for _, r := range rows[1:] {
		line(r)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func listOr(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return strings.Join(l, ",")
}

func joinAddrs[T fmt.Stringer](l []T) string {
	s := make([]string, len(l))
	for i, a := range l {
		s[i] = a.String()
	}
	return listOr(s, "-")
}
