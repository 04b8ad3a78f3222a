package fleet

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
	"gopkg.in/yaml.v3"
)

// TEMPORARY stand-ins for the lead's policy.go, deleted when it lands.

type Policy struct {
	Groups      map[string][]byte
	PrefixLists map[string][]byte
}

func (p Policy) File(opts rules.Options) (*rules.File, error) {
	var b strings.Builder
	b.WriteString("version: 1\n")
	item := func(v []byte) {
		for i, l := range strings.Split(strings.TrimRight(string(v), "\n"), "\n") {
			if i == 0 {
				b.WriteString("  - " + l + "\n")
			} else {
				b.WriteString("    " + l + "\n")
			}
		}
	}
	names := func(m map[string][]byte) []string {
		var n []string
		for k := range m {
			n = append(n, k)
		}
		sort.Strings(n)
		return n
	}
	if len(p.PrefixLists) > 0 {
		b.WriteString("prefix_lists:\n")
		for _, n := range names(p.PrefixLists) {
			item(p.PrefixLists[n])
		}
	}
	b.WriteString("groups:\n")
	for _, n := range names(p.Groups) {
		var probe struct{ Name string }
		if err := yaml.Unmarshal(p.Groups[n], &probe); err != nil || probe.Name != n {
			return nil, fmt.Errorf("policy/groups/%s: bad value", n)
		}
		item(p.Groups[n])
	}
	return rules.Parse("policy", []byte(b.String()), opts)
}

func Hash(f *rules.File) string {
	h := sha256.New()
	for _, g := range f.Groups {
		fmt.Fprintf(h, "%s|%v|%v|%v\n", g.Name, g.Ingress, g.Egress, g.EgressOmitted)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func ruleRefs(r *rules.Rule) []string { return nil }
