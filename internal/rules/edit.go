package rules

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
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

// RuleRef names one rule of a file: the group's index, the list and the
// rule's index in it.
type RuleRef struct {
	Group int
	Dir   direction.Dir
	Index int
}

// Numbered lists every rule of the file in the order `fwctl status
// numbered` shows them, which is the numbering `fwctl delete N` uses
// (element 0 is rule 1): groups in file order, in each group its ingress
// rules then its egress rules.
func (f *File) Numbered() []RuleRef {
	out := make([]RuleRef, 0, f.NumRules())
	for gi := range f.Groups {
		g := &f.Groups[gi]
		for i := range g.Ingress {
			out = append(out, RuleRef{Group: gi, Dir: direction.Ingress, Index: i})
		}
		for i := range g.Egress {
			out = append(out, RuleRef{Group: gi, Dir: direction.Egress, Index: i})
		}
	}
	return out
}

// RuleAt returns the rule ref names, or nil when there is none.
func (f *File) RuleAt(ref RuleRef) *Rule {
	if ref.Group < 0 || ref.Group >= len(f.Groups) {
		return nil
	}
	list := f.Groups[ref.Group].Ingress
	if ref.Dir == direction.Egress {
		list = f.Groups[ref.Group].Egress
	}
	if ref.Index < 0 || ref.Index >= len(list) {
		return nil
	}
	return &list[ref.Index]
}

// GroupIndex returns the index of the named group, or -1.
func (f *File) GroupIndex(name string) int {
	for i := range f.Groups {
		if f.Groups[i].Name == name {
			return i
		}
	}
	return -1
}

// ResolvePeers turns peers as written (CIDRs, addresses, prefix-list
// names of this file, any, any4, any6) into canonical prefixes, as the
// decoder does.
func (f *File) ResolvePeers(peers []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	add := func(p netip.Prefix) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, s := range peers {
		if ps, ok := builtinPeer(s); ok {
			for _, p := range ps {
				add(p)
			}
			continue
		}
		if i := slices.IndexFunc(f.PrefixLists, func(pl PrefixList) bool { return pl.Name == s }); i >= 0 {
			for _, p := range f.PrefixLists[i].Prefixes {
				add(p)
			}
			continue
		}
		if listName.MatchString(s) && !strings.Contains(s, ":") {
			return nil, fmt.Errorf("undefined prefix list %q: define it under prefix_lists in the rules file, or write a CIDR or any", s)
		}
		p, err := ParsePeer(s)
		if err != nil {
			return nil, err
		}
		add(p)
	}
	return out, nil
}

// SameTraffic reports whether two rules allow exactly the same
// connections: same protocol, same set of ports, same ICMP type and code
// and the same peer prefixes (both must have Prefixes resolved). The
// description does not count.
func (r *Rule) SameTraffic(o *Rule) bool {
	if r.Proto != o.Proto {
		return false
	}
	if !slices.Equal(normPorts(r.Ports), normPorts(o.Ports)) {
		return false
	}
	if (r.ICMP == nil) != (o.ICMP == nil) || r.ICMP != nil && *r.ICMP != *o.ICMP {
		return false
	}
	a, b := slices.Clone(r.Prefixes), slices.Clone(o.Prefixes)
	cmpPrefix := func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	}
	slices.SortFunc(a, cmpPrefix)
	slices.SortFunc(b, cmpPrefix)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// normPorts sorts and merges port ranges; nil (all ports) becomes 0-65535.
func normPorts(ps []PortRange) []PortRange {
	if len(ps) == 0 {
		return []PortRange{{0, 65535}}
	}
	s := slices.Clone(ps)
	slices.SortFunc(s, func(a, b PortRange) int { return int(a.Lo) - int(b.Lo) })
	out := s[:1]
	for _, r := range s[1:] {
		last := &out[len(out)-1]
		if int(r.Lo) <= int(last.Hi)+1 {
			last.Hi = max(last.Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

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
	var splice func() ([]byte, bool)
	switch {
	case g == nil:
		snap := snapshot(groupsSeq)
		ng := newGroupNode(group, dir, items)
		splice = func() ([]byte, bool) { return doc.appendItems(snap, []*yaml.Node{ng}) }
		groupsSeq.Content = append(groupsSeq.Content, ng)
	default:
		list := mapValue(g, dir.Key())
		switch {
		case list == nil && dir == direction.Egress:
			return nil, fmt.Errorf("group %q allows all outbound traffic (it has no egress key): adding an egress rule would restrict it: %w", group, ErrEgressOmitted)
		case list == nil:
			snap := snapshot(g)
			key := &yaml.Node{Kind: yaml.ScalarNode, Value: dir.Key()}
			seq := &yaml.Node{Kind: yaml.SequenceNode, Content: items}
			splice = func() ([]byte, bool) { return doc.appendKey(snap, key, seq) }
			g.Content = append(g.Content, key, seq)
		case list.Kind == yaml.ScalarNode && list.Tag == "!!null":
			snap := snapshot(g)
			splice = func() ([]byte, bool) { return doc.fillNull(snap, dir.Key(), items) }
			list.Kind, list.Tag, list.Value, list.Content = yaml.SequenceNode, "", "", items
		case list.Kind == yaml.SequenceNode:
			snap := snapshot(list)
			splice = func() ([]byte, bool) { return doc.appendItems(snap, items) }
			if list.Style&yaml.FlowStyle != 0 && len(list.Content) == 0 {
				list.Style = 0
			}
			list.Content = append(list.Content, items...)
		default:
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

// FormatRule renders a rule as the one-line YAML flow mapping an edit
// writes, e.g. {proto: tcp, ports: 443, from: [any]}.
func FormatRule(r *Rule, dir direction.Dir) string {
	b, err := yaml.Marshal(ruleNode(r, dir))
	if err != nil {
		return r.Format(dir)
	}
	return strings.TrimSpace(string(b))
}

func ruleNode(r *Rule, dir direction.Dir) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	add := func(k string, v *yaml.Node) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, v)
	}
	if !r.Proto.All && r.Proto.String() == strconv.Itoa(int(r.Proto.Num)) {
		add("proto", num(int(r.Proto.Num))) // a protocol without a name
	} else {
		add("proto", str(r.Proto.String()))
	}
	switch len(r.Ports) {
	case 0:
	case 1:
		add("ports", portNode(r.Ports[0]))
	default:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, p := range r.Ports {
			seq.Content = append(seq.Content, portNode(p))
		}
		add("ports", seq)
	}
	if r.ICMP != nil {
		im := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		im.Content = append(im.Content, str("type"), num(int(r.ICMP.Type)))
		if !r.ICMP.AnyCode {
			im.Content = append(im.Content, str("code"), num(int(r.ICMP.Code)))
		}
		add("icmp", im)
	}
	peers := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, p := range r.Peers {
		peers.Content = append(peers.Content, str(p))
	}
	add(dir.PeerWord(), peers)
	if r.Description != "" {
		add("description", str(r.Description))
	}
	return m
}

func portNode(p PortRange) *yaml.Node {
	if p.Lo == p.Hi {
		return num(int(p.Lo))
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p.String()}
}

func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func num(n int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(n)}
}

func newGroupNode(name string, dir direction.Dir, items []*yaml.Node) *yaml.Node {
	g := &yaml.Node{Kind: yaml.MappingNode}
	g.Content = append(g.Content,
		str("name"), str(name),
		str("description"), str(NewGroupDescription),
		str(dir.Key()), &yaml.Node{Kind: yaml.SequenceNode, Content: items})
	if dir == direction.Ingress {
		g.Content = append(g.Content, str("egress"), &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle})
	}
	return g
}

// snapshot copies a node and its list of children, so that a splice can
// see the tree as it was before the edit.
func snapshot(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = slices.Clone(n.Content)
	return &c
}

// mapEntry returns the key and value nodes of key in mapping m.
func mapEntry(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i], deref(m.Content[i+1])
		}
	}
	return nil, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	_, v := mapEntry(m, key)
	return v
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
		g.Pos = Pos{}
		g.Ingress = slices.Clone(g.Ingress)
		g.Egress = slices.Clone(g.Egress)
		for j := range g.Ingress {
			g.Ingress[j].Pos = Pos{}
		}
		for j := range g.Egress {
			g.Egress[j].Pos = Pos{}
		}
	}
	return c
}

// lastLine is the last line any node under n starts on.
func lastLine(n *yaml.Node) int {
	l := n.Line
	for _, c := range n.Content {
		l = max(l, lastLine(c))
	}
	return l
}

// indentCol is the 1-based column of a line's first non-space character,
// 0 for a blank line.
func indentCol(line string) int {
	for i := 0; i < len(line); i++ {
		if line[i] != ' ' {
			if line[i] == '\t' || line[i] == '\r' && i == len(line)-1 {
				return 0
			}
			return i + 1
		}
	}
	return 0
}

// regionEnd is the last line (1-based) of the block that starts at or
// before from and whose continuation lines are indented deeper than col:
// lines after from belong to it while blank or indented past col; blank
// lines at its end do not. stop bounds the scan (exclusive, 0: no bound).
func (t *tree) regionEnd(from, col, stop int) int {
	end := from
	for l := from + 1; l <= len(t.lines); l++ {
		if stop > 0 && l >= stop {
			break
		}
		c := indentCol(t.lines[l-1])
		if c == 0 {
			continue
		}
		if c <= col {
			break
		}
		end = l
	}
	return end
}

// blockItem reports whether it is an item of the block sequence seq that
// starts its own line: only spaces before its dash.
func (t *tree) blockItem(seq *yaml.Node, it *yaml.Node) bool {
	if seq.Style&yaml.FlowStyle != 0 || it.Line < 1 || it.Line > len(t.lines) {
		return false
	}
	line := t.lines[it.Line-1]
	return indentCol(line) == seq.Column && strings.HasPrefix(line[seq.Column-1:], "- ")
}

// appendItems splices items at the end of a block sequence.
func (t *tree) appendItems(seq *yaml.Node, items []*yaml.Node) ([]byte, bool) {
	if seq.Style&yaml.FlowStyle != 0 {
		return t.appendFlow(seq, items)
	}
	if len(seq.Content) == 0 || seq.Column < 1 {
		return nil, false
	}
	for _, it := range seq.Content {
		if !t.blockItem(seq, it) {
			return nil, false
		}
	}
	end := t.regionEnd(lastLine(seq), seq.Column, 0)
	last := seq.Content[len(seq.Content)-1]
	text, ok := renderItems(items, seq.Column-1, last.Column-seq.Column)
	if !ok {
		return nil, false
	}
	ed := t.editor()
	ed.insertAfter(end, text)
	return ed.bytes(), true
}

// appendFlow handles an empty flow sequence "[]" alone after its key:
// it becomes a block sequence.
func (t *tree) appendFlow(seq *yaml.Node, items []*yaml.Node) ([]byte, bool) {
	if len(seq.Content) != 0 || seq.Line < 1 || seq.Line > len(t.lines) {
		return nil, false
	}
	line := t.lines[seq.Line-1]
	open := seq.Column - 1
	if open >= len(line) || line[open] != '[' {
		return nil, false
	}
	closeAt := strings.IndexByte(line[open:], ']')
	if closeAt < 0 || strings.TrimSpace(line[open+1:open+closeAt]) != "" {
		return nil, false
	}
	keyCol := indentCol(line)
	if keyCol == 0 || strings.HasPrefix(line[keyCol-1:], "- ") {
		return nil, false // "- ingress: []" or the like: leave it to the encoder
	}
	text, ok := renderItems(items, keyCol-1+2, 2)
	if !ok {
		return nil, false
	}
	ed := t.editor()
	rest := strings.TrimRight(line[:open], " ")
	tail := line[open+closeAt+1:]
	if strings.TrimSpace(tail) != "" {
		rest += " " + strings.TrimLeft(tail, " ")
	}
	ed.replace(seq.Line, rest)
	ed.insertAfter(seq.Line, text)
	return ed.bytes(), true
}

// fillNull gives a key with no value ("ingress:") its items.
func (t *tree) fillNull(m *yaml.Node, key string, items []*yaml.Node) ([]byte, bool) {
	k, _ := mapEntry(m, key)
	if k == nil || k.Line < 1 || k.Line > len(t.lines) || m.Style&yaml.FlowStyle != 0 {
		return nil, false
	}
	text, ok := renderItems(items, k.Column-1+2, 2)
	if !ok {
		return nil, false
	}
	ed := t.editor()
	ed.insertAfter(k.Line, text)
	return ed.bytes(), true
}

// appendKey adds "key:" with a block sequence at the end of a block
// mapping that is an item of a block sequence (a group).
func (t *tree) appendKey(m, key, seq *yaml.Node) ([]byte, bool) {
	if m.Style&yaml.FlowStyle != 0 || len(m.Content) == 0 {
		return nil, false
	}
	first := m.Content[0]
	if first.Line < 1 || first.Line > len(t.lines) {
		return nil, false
	}
	indent := first.Column - 1
	end := t.regionEnd(lastLine(m), indent, 0)
	text, ok := renderItems(seq.Content, indent+2, 2)
	if !ok {
		return nil, false
	}
	ed := t.editor()
	ed.insertAfter(end, strings.Repeat(" ", indent)+key.Value+":\n"+text)
	return ed.bytes(), true
}

// renderItems renders sequence items as block sequence lines: the dash
// indented by indent spaces, the content gap spaces after the dash (at
// least one). A mapping that is flow style stays on one line; a block
// mapping is encoded as block lines.
func renderItems(items []*yaml.Node, indent, gap int) (string, bool) {
	gap = max(gap, 2)
	var b strings.Builder
	pad := strings.Repeat(" ", indent)
	for _, it := range items {
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(it); err != nil {
			return "", false
		}
		enc.Close()
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		for i, l := range lines {
			if i == 0 {
				b.WriteString(pad + "-" + strings.Repeat(" ", gap-1) + l + "\n")
				continue
			}
			b.WriteString(pad + strings.Repeat(" ", gap) + l + "\n")
		}
	}
	return b.String(), true
}

// editor collects line edits on the original text; line numbers always
// refer to the original.
type editor struct {
	t       *tree
	drop    map[int]bool
	repl    map[int]string
	inserts map[int]string // text inserted after the line (0: at the top)
}

func (t *tree) editor() *editor {
	return &editor{t: t, drop: map[int]bool{}, repl: map[int]string{}, inserts: map[int]string{}}
}

func (e *editor) insertAfter(line int, text string) { e.inserts[line] += text }
func (e *editor) replace(line int, text string)     { e.repl[line] = text }

// deleteItems drops the lines of the items drop names from a block
// sequence; when none is left, "[]" goes after the key.
func (e *editor) deleteItems(key, seq *yaml.Node, drop map[int]bool) bool {
	if seq == nil || key == nil || len(seq.Content) == 0 {
		return false
	}
	items := seq.Content
	for _, it := range items {
		if !e.t.blockItem(seq, it) {
			return false
		}
	}
	for j, it := range items {
		if !drop[j] {
			continue
		}
		stop := 0
		if j+1 < len(items) {
			stop = items[j+1].Line
		}
		end := e.t.regionEnd(lastLine(it), seq.Column, stop)
		for l := it.Line; l <= end; l++ {
			e.drop[l] = true
		}
	}
	if len(drop) == len(items) {
		line := e.t.lines[key.Line-1]
		at := key.Column - 1 + len(key.Value)
		if at >= len(line) || line[at] != ':' {
			return false
		}
		e.repl[key.Line] = line[:at+1] + " []" + line[at+1:]
	}
	return true
}

func (e *editor) bytes() []byte {
	var b strings.Builder
	b.WriteString(e.inserts[0])
	for i, l := range e.t.lines {
		n := i + 1
		if !e.drop[n] {
			if r, ok := e.repl[n]; ok {
				l = r
			}
			b.WriteString(l)
			b.WriteByte('\n')
		}
		b.WriteString(e.inserts[n])
	}
	return []byte(b.String())
}
