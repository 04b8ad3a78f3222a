package fleet

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
)

// valueSpan is where one key's value sits in a policy's text.
type valueSpan struct {
	kind   Kind
	name   string
	first  int // the text's line (1-based) of the value's first line
	lines  int
	indent int // columns the value was shifted right by
}

// policyText writes p as one rules file, as Policy.File assembles it
// (version 1, prefix_lists then groups, each sorted by name; a one-line
// prefix list on its name's line): what fwctl fleet export prints and
// what a rule edit edits. The spans say which lines came from which key.
func policyText(p Policy) ([]byte, []valueSpan) {
	var b bytes.Buffer
	var spans []valueSpan
	line := 1
	write := func(s string) {
		b.WriteString(s)
		line += strings.Count(s, "\n")
	}
	// value writes one key's value, its first line after first and the
	// others after rest.
	value := func(kind Kind, name string, v []byte, first, rest string) {
		ls := strings.Split(strings.TrimRight(strings.ReplaceAll(string(v), "\r\n", "\n"), "\n"), "\n")
		spans = append(spans, valueSpan{kind: kind, name: name, first: line, lines: len(ls), indent: len(first)})
		for i, l := range ls {
			switch {
			case l == "":
				write("\n")
			case i == 0:
				write(first + l + "\n")
			default:
				write(rest + l + "\n")
			}
		}
	}
	write("version: 1\n")
	if len(p.PrefixLists) > 0 {
		write("prefix_lists:\n")
		for _, n := range slices.Sorted(maps.Keys(p.PrefixLists)) {
			v := bytes.TrimRight(p.PrefixLists[n], "\n")
			if !bytes.Contains(v, []byte("\n")) && bytes.HasPrefix(v, []byte("[")) { // a flow list stays on its name's line
				value(KindPrefixList, n, v, "  "+n+": ", "")
				continue
			}
			write("  " + n + ":\n")
			value(KindPrefixList, n, v, "    ", "    ")
		}
	}
	if len(p.Groups) == 0 {
		write("groups: []\n")
		return b.Bytes(), spans
	}
	write("groups:\n")
	for _, n := range slices.Sorted(maps.Keys(p.Groups)) {
		value(KindGroup, n, p.Groups[n], "  - ", "    ")
	}
	return b.Bytes(), spans
}

// keyErrors renames the positions of err (an error of decoding a policy's
// text) to the keys whose values hold them: "policy:12:9" becomes
// "/fwd/policy/groups/web:3:5". Other errors come back as they are.
func keyErrors(err error, spans []valueSpan, l Layout) error {
	var list rules.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	out := make(rules.ErrorList, 0, len(list))
	for _, e := range list {
		c := *e
		for _, s := range spans {
			if c.Pos.Line >= s.first && c.Pos.Line < s.first+s.lines {
				c.File = l.Key(s.kind, s.name)
				c.Pos.Line -= s.first - 1
				c.Pos.Col = max(1, c.Pos.Col-s.indent)
				break
			}
		}
		out = append(out, &c)
	}
	return out
}
