package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) shown {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		return shown(fmt.Sprintf("%q", clip(n.Value)))
	}
	return "something else"
}

// fields walks a mapping, rejecting unknown and repeated keys, and calls fn
// for every known key in file order.
// It runs for every rule, so it keeps the keys seen as bits of known's
// indexes, not in a map.
func (d *decoder) fields(m *yaml.Node, what string, known []string, fn func(key string, k, v *yaml.Node)) {
	var seen [4]uint64 // bit j: known[j] was seen
	if len(known) > len(seen)*64 {
		panic("rules: fields: too many known keys")
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], deref(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "expected a key name in %s, got %s", what, kindName(k))
			continue
		}
		key := k.Value
		j := slices.Index(known, key)
		if j < 0 {
			d.errorf(k, "unknown key %q in %s: expected one of %s%s", key, what, strings.Join(known, ", "), suggest(key, known))
			continue
		}
		if seen[j/64]&(1<<(j%64)) != 0 {
			d.errorf(k, "key %q repeated in %s", key, what)
			continue
		}
		seen[j/64] |= 1 << (j % 64)
		fn(key, k, v)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest names the known key closest to a misspelt one, if any is close.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalar returns the node's text if it is a non-null scalar.
func (d *decoder) scalar(n *yaml.Node, what, expected string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, "%s: expected %s, got %s", what, expected, kindName(n))
		return "", false
	}
	return n.Value, true
}

// str returns the text of a group name or description, checked with
// CheckText.
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	s, ok := d.scalar(n, what, "a string")
	if !ok {
		return "", false
	}
	if err := CheckText(what, s); err != nil {
		d.errorf(n, "%v", err)
		return "", false
	}
	return s, true
}

func (d *decoder) intValue(n *yaml.Node, what string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errorf(n, "%s: expected an integer, got %s", what, kindName(n))
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil {
		d.errorf(n, "%s: expected an integer, got %q", what, n.Value)
		return 0, false
	}
	return v, true
}

// seq returns the items of a list node; a null counts as an empty list
// only when nullOK.
func (d *decoder) seq(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list, got %s", what, kindName(n))
		return nil, false
	}
	return n.Content, true
}
