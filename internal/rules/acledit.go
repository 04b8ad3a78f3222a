package rules

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/types/direction"
	"gopkg.in/yaml.v3"
)

// ACL edits, as AddRules and DeleteRules edit groups: on the node tree
// and as a splice of the text that keeps comments, the splice kept only
// when it decodes to the same rules.

// ErrACLNumberTaken is returned by AddACLEntry for a number that an
// entry of the same direction already has.
var ErrACLNumberTaken = errors.New("acl entry number taken")

// ErrNoACLEntry is returned by DeleteACLEntries for a number no entry of
// the direction has.
var ErrNoACLEntry = errors.New("no such acl entry")

// FormatACLEntry renders an entry as the one-line YAML flow mapping an
// edit writes, e.g. {number: 100, action: deny, proto: tcp, ports: 22,
// from: [203.0.113.9]}.
func FormatACLEntry(e *ACLEntry, dir direction.Dir) string {
	b, err := yaml.Marshal(aclNode(e, dir))
	if err != nil {
		return e.Format(dir)
	}
	return strings.TrimSpace(string(b))
}

func aclNode(e *ACLEntry, dir direction.Dir) *yaml.Node {
	r := e.Rule()
	r.Description = e.Description
	m := ruleNode(&r, dir)
	head := []*yaml.Node{str("number"), num(e.Number), str("action"), str(e.Action.String())}
	m.Content = append(head, m.Content...)
	if !e.Expires.IsZero() {
		m.Content = append(m.Content, str("expires"), str(e.Expires.UTC().Format(time.RFC3339)))
	}
	return m
}

// AddACLEntry adds e to the ingress or egress list of the acl section of
// the rules file data and returns the new file. The entry goes at the end
// of its list (the ACL is evaluated by number, not by place); the acl
// key, or its list, is created when absent (the acl key at the end of
// the file). A number already used in that direction is refused with
// ErrACLNumberTaken. Only Number, Action, the traffic, Description and
// Expires of e are used. The result has been decoded with opts.
func AddACLEntry(name string, data []byte, dir direction.Dir, e ACLEntry, opts Options) ([]byte, error) {
	cur, err := Parse(name, data, opts)
	if err != nil {
		return nil, err
	}
	if cur.ACL.Find(dir, e.Number) >= 0 {
		return nil, fmt.Errorf("acl %s entry %d exists: %w", dir.Key(), e.Number, ErrACLNumberTaken)
	}
	doc, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	items := []*yaml.Node{aclNode(&e, dir)}
	aclKey, acl := mapEntry(doc.root, "acl")
	var splice func() ([]byte, bool)
	switch {
	case acl == nil:
		key := str("acl")
		key.Tag = ""
		seq := &yaml.Node{Kind: yaml.SequenceNode, Content: items}
		val := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: dir.Key()}, seq}}
		splice = func() ([]byte, bool) {
			text, ok := renderItems(items, 4, 2)
			if !ok {
				return nil, false
			}
			ed := doc.editor()
			ed.insertAfter(len(doc.lines), "acl:\n  "+dir.Key()+":\n"+text)
			return ed.bytes(), true
		}
		doc.root.Content = append(doc.root.Content, key, val)
	case acl.Kind == yaml.ScalarNode && acl.Tag == "!!null":
		seq := &yaml.Node{Kind: yaml.SequenceNode, Content: items}
		acl.Kind, acl.Tag, acl.Value = yaml.MappingNode, "", ""
		acl.Content = []*yaml.Node{{Kind: yaml.ScalarNode, Value: dir.Key()}, seq}
		splice = func() ([]byte, bool) {
			text, ok := renderItems(items, aclKey.Column-1+4, 2)
			if !ok || aclKey.Line < 1 {
				return nil, false
			}
			ed := doc.editor()
			ed.insertAfter(aclKey.Line, fmt.Sprintf("%*s%s:\n%s", aclKey.Column-1+2, "", dir.Key(), text))
			return ed.bytes(), true
		}
	case acl.Kind == yaml.MappingNode:
		var ok bool
		if splice, ok = doc.appendToKey(acl, dir.Key(), items); !ok {
			return nil, fmt.Errorf("acl: %s is not a list", dir.Key())
		}
	default:
		return nil, errors.New("acl is not a mapping")
	}
	return doc.finish(name, splice, opts)
}

// DeleteACLEntries removes the entries of direction dir numbered nums from
// the rules file data and returns the new file. A list left empty becomes
// "[]"; the acl key stays. A number no entry has is refused with
// ErrNoACLEntry. Comments stay, even those above a deleted entry.
func DeleteACLEntries(name string, data []byte, dir direction.Dir, nums []int, opts Options) ([]byte, error) {
	if len(nums) == 0 {
		return nil, errors.New("no acl entries to delete")
	}
	cur, err := Parse(name, data, opts)
	if err != nil {
		return nil, err
	}
	drop := map[int]bool{}
	for _, n := range nums {
		i := cur.ACL.Find(dir, n)
		if i < 0 {
			return nil, fmt.Errorf("acl %s entry %d: %w", dir.Key(), n, ErrNoACLEntry)
		}
		drop[i] = true
	}
	doc, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	key, list := mapEntry(mapValue(doc.root, "acl"), dir.Key())
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("acl: no %s list", dir.Key())
	}
	snap := snapshot(list)
	var keep []*yaml.Node
	for j, it := range list.Content {
		if !drop[j] {
			keep = append(keep, it)
		}
	}
	if len(keep) == 0 {
		list.Style = yaml.FlowStyle
	}
	list.Content = keep
	splice := func() ([]byte, bool) {
		ed := doc.editor()
		if !ed.deleteItems(key, snap, drop) {
			return nil, false
		}
		return ed.bytes(), true
	}
	return doc.finish(name, splice, opts)
}
