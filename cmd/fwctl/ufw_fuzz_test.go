package main

import (
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
)

// FuzzRuleWords: the ufw grammar never panics, and every rule it accepts
// is one the API accepts too: RuleSpec.Rule takes it and its peers
// resolve (prefix-list names and group references aside, which only the
// daemon's file knows).
func FuzzRuleWords(f *testing.F) {
	for _, sc := range goldenScenarios {
		for _, st := range sc.steps {
			if rest, ok := strings.CutPrefix(st.cmd, "allow "); ok {
				f.Add(rest)
			}
		}
	}
	f.Fuzz(func(t *testing.T, line string) {
		specs, err := parseRuleWords(strings.Fields(line))
		if err != nil {
			if _, ok := err.(*ruleError); !ok {
				t.Fatalf("%q: error of type %T: %v", line, err, err)
			}
			return
		}
		if len(specs) == 0 {
			t.Fatalf("%q: no rules and no error", line)
		}
		for _, s := range specs {
			if _, _, err := s.Rule(); err != nil {
				t.Fatalf("%q: parsed to %+v, which the API rejects: %v", line, s, err)
			}
			for _, p := range s.Peers {
				if !strings.ContainsAny(p, "./:") && p != "any" && p != "any4" && p != "any6" {
					continue // a prefix-list name
				}
				if _, ok := rules.GroupRef(p); ok {
					continue // a group's members: only the daemon's file knows the group
				}
				if _, err := (&rules.File{}).ResolvePeers([]string{p}); err != nil {
					t.Fatalf("%q: peer %q, which the API rejects: %v", line, p, err)
				}
			}
		}
	})
}
