package fleet

// STAND-IN for the lead's policy.go (FLEET-CONTRACT.md): the signatures
// of the contract, so that the admin side builds and is tested before
// the lead's version lands on main. On merge, the lead's file replaces
// this one whole.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
	"gopkg.in/yaml.v3"
)

// Policy is the fleet policy as stored: key name -> value bytes.
type Policy struct {
	Groups      map[string][]byte
	PrefixLists map[string][]byte
}

// File assembles the values into one rules file and decodes it.
func (p Policy) File(opts rules.Options) (*rules.File, error) {
	var b bytes.Buffer
	b.WriteString("version: 1\n")
	if len(p.PrefixLists) > 0 {
		b.WriteString("prefix_lists:\n")
		for _, n := range slices.Sorted(maps.Keys(p.PrefixLists)) {
			for _, l := range strings.Split(strings.TrimRight(string(p.PrefixLists[n]), "\n"), "\n") {
				b.WriteString("  " + l + "\n")
			}
		}
	}
	b.WriteString("groups:\n")
	for _, n := range slices.Sorted(maps.Keys(p.Groups)) {
		for i, l := range strings.Split(strings.TrimRight(string(p.Groups[n]), "\n"), "\n") {
			if i == 0 {
				b.WriteString("  - " + l + "\n")
			} else {
				b.WriteString("    " + l + "\n")
			}
		}
	}
	if len(p.Groups) == 0 {
		b.Reset()
		b.WriteString("version: 1\ngroups: []\n")
	}
	f, err := rules.Parse("policy", b.Bytes(), opts)
	if err != nil {
		return nil, err
	}
	for _, g := range f.Groups {
		if _, ok := p.Groups[g.Name]; !ok {
			return nil, fmt.Errorf("policy/groups: a value names group %q, not its key's", g.Name)
		}
	}
	return f, nil
}

// SplitFile splits a rules file (text) into per-key values.
func SplitFile(f *rules.File, src []byte) (Policy, error) {
	p := Policy{Groups: map[string][]byte{}, PrefixLists: map[string][]byte{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return p, err
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "groups":
			for _, it := range v.Content {
				var name string
				for j := 0; j+1 < len(it.Content); j += 2 {
					if it.Content[j].Value == "name" {
						name = it.Content[j+1].Value
					}
				}
				b, err := yaml.Marshal(it)
				if err != nil {
					return p, err
				}
				p.Groups[name] = b
			}
		case "prefix_lists":
			for j := 0; j+1 < len(v.Content); j += 2 {
				m := &yaml.Node{Kind: yaml.MappingNode, Content: v.Content[j : j+2]}
				b, err := yaml.Marshal(m)
				if err != nil {
					return p, err
				}
				p.PrefixLists[v.Content[j].Value] = b
			}
		case "acl":
			return p, fmt.Errorf("acl: a fleet policy has no acl")
		}
	}
	return p, nil
}

// Hash is a hash of a file's meaning.
func Hash(f *rules.File) string {
	s := sha256.Sum256([]byte(fmt.Sprint(f.Groups, f.PrefixLists)))
	return hex.EncodeToString(s[:])
}
