package rules

import (
	"bytes"
	"strings"

	"gopkg.in/yaml.v3"
)

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

// appendToKey appends items to the list at key in mapping m, in the tree
// and as a splice of the text: the key is added when m lacks it, a null
// value becomes the list, a list gets the items at its end (an empty flow
// list turns into a block one). ok is false, and nothing changes, when
// the value at key is something else.
func (t *tree) appendToKey(m *yaml.Node, key string, items []*yaml.Node) (splice func() ([]byte, bool), ok bool) {
	list := mapValue(m, key)
	switch {
	case list == nil:
		snap := snapshot(m)
		k := &yaml.Node{Kind: yaml.ScalarNode, Value: key}
		seq := &yaml.Node{Kind: yaml.SequenceNode, Content: items}
		m.Content = append(m.Content, k, seq)
		return func() ([]byte, bool) { return t.appendKey(snap, k, seq) }, true
	case list.Kind == yaml.ScalarNode && list.Tag == "!!null":
		snap := snapshot(m)
		list.Kind, list.Tag, list.Value, list.Content = yaml.SequenceNode, "", "", items
		return func() ([]byte, bool) { return t.fillNull(snap, key, items) }, true
	case list.Kind == yaml.SequenceNode:
		snap := snapshot(list)
		if list.Style&yaml.FlowStyle != 0 && len(list.Content) == 0 {
			list.Style = 0
		}
		list.Content = append(list.Content, items...)
		return func() ([]byte, bool) { return t.appendItems(snap, items) }, true
	}
	return nil, false
}
