package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fwd-project/fwd/internal/appprofile"
	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/rules"
)

// This file reads ufw's application profiles into rules:
//
//	allow [in|out] NAME [comment TEXT]
//	allow [in|out] [from ADDR] [to ADDR] app NAME [comment TEXT]
//
// NAME is a profile's name (quoted when it has spaces: 'Nginx Full').
// The rules are ordinary rules, one per protocol of the profile's ports,
// whose description is "app NAME" (then ": TEXT" with a comment): fwd
// itself never reads the profiles.

// profileDirs are the directories fwctl reads profiles from.
func profileDirs(o liveOpts) []string {
	if o.profiles != "" {
		return []string{o.profiles}
	}
	return appprofile.DefaultDirs()
}

// appDescriptionPrefix starts the description of a rule made from a
// profile.
const appDescriptionPrefix = "app "

// ruleWords reads a rule in ufw's grammar, application profiles
// included.
func ruleWords(words []string, o liveOpts) ([]control.RuleSpec, error) {
	var dirWord []string
	body := words
	if len(body) > 0 && (body[0] == "in" || body[0] == "out") {
		dirWord, body = body[:1], body[1:]
	}
	var comment []string
	if i := slices.Index(body, "comment"); i >= 0 {
		body, comment = body[:i], body[i:]
	}
	if i := slices.Index(body, "app"); i >= 0 {
		if i+1 >= len(body) {
			return nil, usageErr("\"app\" needs a profile name: app NAME (fwctl app list shows them)")
		}
		name := body[i+1]
		rest := slices.Concat(body[:i], body[i+2:])
		for _, w := range rest {
			if w == "port" || w == "proto" || w == "app" {
				return nil, rejectErr("%q with app %s: the profile gives the ports and protocols, leave %q out", w, name, w)
			}
		}
		if len(rest) > 0 && !isKeyword(rest[0]) {
			return nil, usageErr("unexpected %q: expected from ADDR, to ADDR, app NAME or comment", rest[0])
		}
		return appRules(name, dirWord, rest, comment, o)
	}
	if len(body) == 1 && !isPortText(strings.SplitN(body[0], "/", 2)[0]) {
		name := body[0]
		set := appprofile.Load(profileDirs(o))
		if set.Has(name) || strings.Contains(name, " ") {
			return appRules(name, dirWord, nil, comment, o)
		}
	}
	return parseRuleWords(words)
}

// appRules makes the rules of profile name, for the direction, the
// peers (the from and to clauses of clauses) and the comment.
func appRules(name string, dirWord, clauses, comment []string, o liveOpts) ([]control.RuleSpec, error) {
	p, err := appprofile.Load(profileDirs(o)).Get(name)
	if err != nil {
		return nil, rejectErr("%v", err)
	}
	base := control.RuleSpec{Dir: "in", Peers: []string{"any"}}
	if len(dirWord) > 0 {
		base.Dir = dirWord[0]
	}
	if len(clauses) > 0 {
		specs, err := parseRuleWords(slices.Concat(dirWord, clauses))
		if err != nil {
			return nil, err
		}
		base = specs[0]
	}
	desc := appDescriptionPrefix + p.Name
	if len(comment) > 1 {
		desc += ": " + strings.Join(comment[1:], " ")
	} else if len(comment) == 1 {
		return nil, usageErr("comment needs a text: comment 'TEXT'")
	}
	if err := rules.CheckDescription(desc); err != nil {
		return nil, rejectErr("bad comment: %v", err)
	}
	var out []control.RuleSpec
	for _, g := range p.Ports {
		protos := []string{g.Proto}
		if g.Proto == "" {
			protos = []string{"tcp", "udp"}
		}
		ports := make([]string, len(g.Ranges))
		for i, r := range g.Ranges {
			ports[i] = strings.Replace(r.String(), ":", "-", 1)
		}
		for _, proto := range protos {
			out = append(out, control.RuleSpec{Dir: base.Dir, Proto: proto, Ports: ports, Peers: base.Peers, Description: desc})
		}
	}
	return out, nil
}

// appInfo is a profile as app info -o json shows it.
type appInfo struct {
	Name        string   `json:"name"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Ports       []string `json:"ports"`
	File        string   `json:"file"`
}

func runApp(e env, args []string) int {
	o, words, ok := scanOpts("app", e, args, "op")
	if !ok {
		return optsExit(o)
	}
	if len(words) == 0 {
		fmt.Fprintf(e.stderr, "fwctl app: missing subcommand: expected list or info NAME\n%s\n", liveUsage["app"])
		return exitUsage
	}
	set := appprofile.Load(profileDirs(o))
	switch {
	case words[0] == "list" && len(words) == 1:
		for _, w := range set.Warnings {
			fmt.Fprintf(e.stderr, "warning: skipped a bad profile file: %v\n", w)
		}
		names := set.Names()
		if o.output == "json" {
			printJSON(e.stdout, map[string][]string{"applications": names})
			return exitOK
		}
		fmt.Fprintln(e.stdout, "Available applications:")
		for _, n := range names {
			fmt.Fprintf(e.stdout, "  %s\n", n)
		}
		return exitOK
	case words[0] == "info" && len(words) == 2:
		names := []string{words[1]}
		if words[1] == "all" {
			names = set.Names()
		}
		var infos []appInfo
		for _, n := range names {
			p, err := set.Get(n)
			if err != nil {
				fmt.Fprintf(e.stderr, "fwctl app info: %v\n", err)
				return exitRejected
			}
			ai := appInfo{Name: p.Name, Title: p.Title, Description: p.Description, File: p.File}
			for _, g := range p.Ports {
				ai.Ports = append(ai.Ports, g.String())
			}
			infos = append(infos, ai)
		}
		if o.output == "json" {
			printJSON(e.stdout, infos)
			return exitOK
		}
		for i, ai := range infos {
			if i > 0 {
				fmt.Fprintln(e.stdout, "\n--")
				fmt.Fprintln(e.stdout)
			}
			fmt.Fprintf(e.stdout, "Profile: %s\nTitle: %s\nDescription: %s\n\n", ai.Name, ai.Title, ai.Description)
			if len(ai.Ports) == 1 {
				fmt.Fprintln(e.stdout, "Port:")
			} else {
				fmt.Fprintln(e.stdout, "Ports:")
			}
			for _, p := range ai.Ports {
				fmt.Fprintf(e.stdout, "  %s\n", p)
			}
		}
		return exitOK
	}
	fmt.Fprintf(e.stderr, "fwctl app: unexpected %q: expected list or info NAME\n%s\n", strings.Join(words, " "), liveUsage["app"])
	return exitUsage
}
