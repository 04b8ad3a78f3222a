package rules

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/fwd-project/fwd/internal/types/direction"
	"gopkg.in/yaml.v3"
)

// This file holds runtime edits: adding and deleting rules in the text of
// a rules file so that everything else in it (comments, blank lines, order,
// flow or block style) stays as the user wrote it.
//
// An edit is made twice. First on the YAML node tree, which is always
// right but, once encoded again, loses blank lines and re-indents the file;
// then as a splice of the original text at the lines the tree names. The
// splice is kept only when the result decodes to exactly the same rules as
// the tree edit; otherwise the re-encoded tree is used. Either way the
// result is decoded strictly before it is returned.

// ErrEgressOmitted is returned by AddRules for an egress rule to a group
// that omits egress: that group allows all outbound traffic, and giving it
// an egress list would take that away.
var ErrEgressOmitted = errors.New("group omits egress")

// NewGroupDescription is the description of a group AddRules creates.
const NewGroupDescription = "rules added with fwctl"

// AddRules appends rules to the ingress or egress list of the named group
// of the rules file data and returns the new file. The group is created at
// the end of the groups when absent. A created group has "egress: []"
// unless the rules are egress rules: a group that omitted egress would
// allow all outbound traffic, and the edit must never allow more than the
// rules added. Adding egress rules to an existing group that omits egress
// is refused with ErrEgressOmitted for the same reason in reverse.
//
// Only Proto, Ports, ICMP, Peers and Description of each rule are used.
// The result has been decoded with opts; its errors are returned as an
// ErrorList.
func AddRules(name string, data []byte, group string, dir direction.Dir, rs []Rule, opts Options) ([]byte, error) {
	return addRules(name, data, group, nil, dir, rs, opts)
}

func addRules(name string, data []byte, group string, ifaces []string, dir direction.Dir, rs []Rule, opts Options) ([]byte, error) {
	if len(rs) == 0 {
		return nil, errors.New("no rules to add")
	}
	doc, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	items := make([]*yaml.Node, len(rs))
	for i := range rs {
		items[i] = ruleNode(&rs[i], dir)
	}
	groupsSeq := mapValue(doc.root, "groups")
	if groupsSeq == nil || groupsSeq.Kind != yaml.SequenceNode {
		return nil, errors.New("rules file has no groups list")
	}
	var g *yaml.Node
	for _, it := range groupsSeq.Content {
		if it.Kind == yaml.MappingNode {
			if n := mapValue(it, "name"); n != nil && n.Kind == yaml.ScalarNode && n.Value == group {
				g = it
				break
			}
		}
	}
	if err := checkAttached(g, group, ifaces); err != nil {
		return nil, err
	}
	var splice func() ([]byte, bool)
	switch {
	case g == nil:
		snap := snapshot(groupsSeq)
		ng := newGroupNode(group, ifaces, dir, items)
		splice = func() ([]byte, bool) { return doc.appendItems(snap, []*yaml.Node{ng}) }
		groupsSeq.Content = append(groupsSeq.Content, ng)
	default:
		if mapValue(g, dir.Key()) == nil && dir == direction.Egress {
			return nil, fmt.Errorf("group %q allows all outbound traffic (it has no egress key): adding an egress rule would restrict it: %w", group, ErrEgressOmitted)
		}
		var ok bool
		if splice, ok = doc.appendToKey(g, dir.Key(), items); !ok {
			return nil, fmt.Errorf("group %q: %s is not a list", group, dir.Key())
		}
	}
	return doc.finish(name, splice, opts)
}

// DeleteRules removes the rules refs name (as numbered by File.Numbered)
// from the rules file data and returns the new file. A list left empty
// becomes "[]" (for egress that is "no outbound", the same as the empty
// list it now is; the key is never removed, which would allow all
// outbound). Comments stay, even those above a deleted rule.
func DeleteRules(name string, data []byte, refs []RuleRef, opts Options) ([]byte, error) {
	if len(refs) == 0 {
		return nil, errors.New("no rules to delete")
	}
	doc, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	groupsSeq := mapValue(doc.root, "groups")
	if groupsSeq == nil || groupsSeq.Kind != yaml.SequenceNode {
		return nil, errors.New("rules file has no groups list")
	}
	type target struct {
		snap *yaml.Node // the list before the edit
		seq  *yaml.Node
		key  *yaml.Node
		drop map[int]bool
	}
	var targets []*target
	byList := map[*yaml.Node]*target{}
	for _, ref := range refs {
		if ref.Group < 0 || ref.Group >= len(groupsSeq.Content) {
			return nil, fmt.Errorf("no group %d", ref.Group)
		}
		g := groupsSeq.Content[ref.Group]
		key, list := mapEntry(g, ref.Dir.Key())
		if list == nil || list.Kind != yaml.SequenceNode || ref.Index < 0 || ref.Index >= len(list.Content) {
			return nil, fmt.Errorf("no %s rule %d in group %d", ref.Dir.Key(), ref.Index, ref.Group)
		}
		t := byList[list]
		if t == nil {
			t = &target{snap: snapshot(list), seq: list, key: key, drop: map[int]bool{}}
			byList[list] = t
			targets = append(targets, t)
		}
		t.drop[ref.Index] = true
	}
	for _, t := range targets {
		var keep []*yaml.Node
		for j, it := range t.seq.Content {
			if !t.drop[j] {
				keep = append(keep, it)
			}
		}
		if len(keep) == 0 {
			t.seq.Style = yaml.FlowStyle
		}
		t.seq.Content = keep
	}
	splice := func() ([]byte, bool) {
		ed := doc.editor()
		for _, t := range targets {
			if !ed.deleteItems(t.key, t.snap, t.drop) {
				return nil, false
			}
		}
		return ed.bytes(), true
	}
	return doc.finish(name, splice, opts)
}

// tree is a rules file as text and as a YAML node tree.
type tree struct {
	data  []byte
	lines []string // the text's lines without their newlines
	doc   yaml.Node
	root  *yaml.Node
}

func parseTree(data []byte) (*tree, error) {
	t := &tree{data: data}
	text := withLF(data) // edits work on "\n" lines; finish puts "\r\n" back
	if err := yaml.Unmarshal(text, &t.doc); err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	if t.doc.Kind != yaml.DocumentNode || len(t.doc.Content) == 0 || t.doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("rules file is not a mapping")
	}
	t.root = t.doc.Content[0]
	t.lines = strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	return t, nil
}

// finish encodes the edited tree, decodes it as the reference, and
// returns the spliced text instead when it decodes to the same rules.
func (t *tree) finish(name string, splice func() ([]byte, bool), opts Options) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&t.doc); err != nil {
		return nil, fmt.Errorf("encode rules: %w", err)
	}
	enc.Close()
	encoded := t.lineEndings(buf.Bytes())
	want, err := Parse(name, encoded, opts)
	if err != nil {
		return nil, err
	}
	if text, ok := splice(); ok {
		text = t.lineEndings(text)
		if got, err := Parse(name, text, opts); err == nil && sameRules(got, want) {
			return text, nil
		}
	}
	return encoded, nil
}

// sameRules compares two decoded files, ignoring positions and hashes.
func sameRules(a, b *File) bool {
	return reflect.DeepEqual(stripPos(a), stripPos(b))
}

func stripPos(f *File) File {
	c := *f
	c.Path, c.Hash, c.Warnings = "", "", nil
	c.PrefixLists = slices.Clone(f.PrefixLists)
	for i := range c.PrefixLists {
		c.PrefixLists[i].Pos = Pos{}
	}
	c.Groups = slices.Clone(f.Groups)
	for i := range c.Groups {
		g := &c.Groups[i]
		g.Pos, g.IfacePos = Pos{}, Pos{}
		g.Ingress = slices.Clone(g.Ingress)
		g.Egress = slices.Clone(g.Egress)
		for j := range g.Ingress {
			g.Ingress[j].Pos = Pos{}
		}
		for j := range g.Egress {
			g.Egress[j].Pos = Pos{}
		}
	}
	c.ACL = ACL{Ingress: slices.Clone(f.ACL.Ingress), Egress: slices.Clone(f.ACL.Egress)}
	for _, list := range [][]ACLEntry{c.ACL.Ingress, c.ACL.Egress} {
		for j := range list {
			list[j].Pos = Pos{}
		}
	}
	return c
}
