package fleet

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"

	"github.com/fwd-project/fwd/internal/rules"

	"gopkg.in/yaml.v3"
)

// Policy is the fleet's policy as stored: one value per group and per
// prefix list, by name. Read together they are one rules file.
type Policy struct {
	// Layout names the keys in errors; the zero Layout names them
	// without a prefix ("policy/groups/web").
	Layout      Layout
	Groups      map[string][]byte // name -> YAML of one item of groups
	PrefixLists map[string][]byte // name -> YAML of the list of one prefix list
}

// File assembles the policy into one rules file (version 1, prefix lists
// then groups, each sorted by name: policyText) and decodes it as
// rules.Parse does, so every check of a rules file holds for the fleet's
// policy. An error's place is the key's and the line and column within
// its value ("/fwd/policy/groups/web:3:7: ..."). A group value whose
// name is not its key's is refused.
func (p Policy) File(opts rules.Options) (*rules.File, error) {
	text, spans := policyText(p)
	f, err := rules.Parse("policy", text, opts)
	if err != nil {
		return nil, keyErrors(err, spans, p.Layout)
	}
	for i, name := range slices.Sorted(maps.Keys(p.Groups)) {
		if f.Groups[i].Name != name {
			return nil, fmt.Errorf("%s: holds group %q: a group's key is its name", p.Layout.Key(KindGroup, name), f.Groups[i].Name)
		}
	}
	return f, nil
}

// SplitFile is File's other way: a rules file, decoded as f from src,
// into one value per group and per prefix list, each re-marshalled from
// its YAML node (comments inside an item stay with it). A fleet policy
// holds groups and prefix lists only: a file with an acl or a failsafe
// key is refused, those are each host's own.
func SplitFile(f *rules.File, src []byte) (Policy, error) {
	if len(f.ACL.Ingress)+len(f.ACL.Egress) > 0 {
		return Policy{}, fmt.Errorf("%s: the acl is not part of a fleet policy: keep it in each host's rules file", f.Path)
	}
	if f.Failsafe != (rules.Failsafe{}) {
		return Policy{}, fmt.Errorf("%s: failsafe is not part of a fleet policy: keep it in each host's rules file", f.Path)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil || len(doc.Content) == 0 {
		return Policy{}, fmt.Errorf("%s: not the YAML rules were decoded from: %v", f.Path, err)
	}
	p := Policy{Groups: map[string][]byte{}, PrefixLists: map[string][]byte{}}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "groups":
			if len(v.Content) != len(f.Groups) {
				return Policy{}, fmt.Errorf("%s: groups do not match the decoded file", f.Path)
			}
			for gi, item := range v.Content {
				b, err := marshal(item)
				if err != nil {
					return Policy{}, fmt.Errorf("%s: group %s: %w", f.Path, f.Groups[gi].Name, err)
				}
				p.Groups[f.Groups[gi].Name] = b
			}
		case "prefix_lists":
			for j := 0; j+1 < len(v.Content); j += 2 {
				b, err := marshal(v.Content[j+1])
				if err != nil {
					return Policy{}, fmt.Errorf("%s: prefix list %s: %w", f.Path, v.Content[j].Value, err)
				}
				p.PrefixLists[v.Content[j].Value] = b
			}
		}
	}
	return p, nil
}

func marshal(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	e.SetIndent(2)
	if err := e.Encode(n); err != nil {
		return nil, err
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Hash is a hash of what a file means to the table: its groups in order
// with their rules' protocols, ports, ICMP types, limits and the prefixes
// and resolved members they match, sorted. Two hosts that enforce the
// same thing have the same hash, however the policy was written.
func Hash(f *rules.File) string {
	h := sha256.New()
	for gi := range f.Groups {
		g := &f.Groups[gi]
		fmt.Fprintf(h, "group %q audit=%v egress-omitted=%v ifaces=%q\n", g.Name, g.Audit, g.EgressOmitted, g.Interfaces)
		hashRules(h, "in", g.Ingress)
		hashRules(h, "out", g.Egress)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashRules(w io.Writer, dir string, rs []rules.Rule) {
	for i := range rs {
		r := &rs[i]
		peers := slices.Concat(r.Prefixes, r.Members)
		slices.SortFunc(peers, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		peers = slices.Compact(peers)
		fmt.Fprintf(w, "%s %s ports=%v icmp=%v limit=%v peers=[", dir, r.Proto, r.Ports, r.ICMP, r.Limit)
		// The peers as fmt's %v writes them, without fmt: a fleet
		// group's members are hundreds of prefixes.
		var b []byte
		for i, p := range peers {
			if i > 0 {
				b = append(b, ' ')
			}
			b = p.AppendTo(b)
		}
		w.Write(append(b, "]\n"...))
	}
}
