package rules

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// yaml.v3 reports a syntax error at the line where the enclosing
// collection started, or without a line at all (bad bytes, an unknown
// alias). The functions here find where the text really goes wrong. They
// run only after yaml.v3 has refused a file, so they may be slow but must
// not point at a place that is fine.

// syntaxProblem is where a YAML syntax error really is, and what it is.
type syntaxProblem struct {
	pos Pos
	msg string // "" keeps yaml.v3's message
}

// locateSyntax finds the place of the syntax error yaml.v3 reported for
// data, first by looking at the bytes, then by a light scan of YAML's
// tokens (quotes, flow brackets, aliases, indentation tabs), last by
// finding the shortest run of whole lines that yaml.v3 refuses.
func locateSyntax(data []byte, yamlMsg string) (syntaxProblem, bool) {
	if p, ok := badByte(data); ok {
		return p, true
	}
	sc := scanner{data: data, anchors: map[string]bool{}}
	if p, ok := sc.scan(); ok {
		return p, true
	}
	if len(data) > maxBisect {
		return syntaxProblem{}, false
	}
	return firstBadLine(data, sc.safe, yamlMsg)
}

// maxBisect is the largest file whose bad line firstBadLine looks for: it
// parses about log2(lines) prefixes, some seconds for 4 MB. Beyond it
// yaml.v3's line is printed.
const maxBisect = 1 << 20

// posAt is the line and column (in characters, 1-based) of byte offset i.
func posAt(data []byte, i int) Pos {
	i = min(i, len(data))
	start := bytes.LastIndexByte(data[:i], '\n') + 1
	line := bytes.Count(data[:start], []byte{'\n'}) + 1
	col := 1
	for j := start; j < i; {
		_, n := utf8.DecodeRune(data[j:])
		j += n
		col++
	}
	return Pos{Line: line, Col: col}
}

// badByte finds the first byte that yaml.v3's reader refuses: a NUL, a
// control character, or bytes that are not UTF-8.
func badByte(data []byte) (syntaxProblem, bool) {
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		return syntaxProblem{}, false // UTF-16, which yaml.v3 reads itself
	}
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		var msg string
		switch {
		case r == utf8.RuneError && n <= 1:
			msg = fmt.Sprintf("invalid UTF-8 byte 0x%02x: a rules file is UTF-8 text (is this a binary file?)", data[i])
		case r == 0:
			msg = "NUL byte: a rules file is text (is this a binary file?)"
		case !yamlPrintable(r):
			msg = fmt.Sprintf("control character %U: a rules file is printable text", r)
		}
		if msg != "" {
			return syntaxProblem{pos: posAt(data, i), msg: msg}, true
		}
		i += n
	}
	return syntaxProblem{}, false
}

// yamlPrintable is the set of characters yaml.v3's reader takes.
func yamlPrintable(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0x7E || r == 0x85 ||
		r >= 0xA0 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// opener is an open flow collection: '[' or '{', where it is, and the
// indentation of the line it is on.
type opener struct {
	c      byte
	at     int
	indent int
}

// scanner reads just enough of YAML's tokens to find the problems whose
// place yaml.v3 does not report: a quote never closed, a bracket closed by
// the wrong one or never, an alias to no anchor, a tab in indentation.
type scanner struct {
	data    []byte
	flow    []opener
	anchors map[string]bool
	// safe are the offsets just after each line end where no flow
	// collection, quoted string or block scalar is open: the places a
	// file can be cut and still be valid YAML up to there.
	safe []int
}

func (s *scanner) problem(i int, format string, args ...any) (syntaxProblem, bool) {
	return syntaxProblem{pos: posAt(s.data, i), msg: fmt.Sprintf(format, args...)}, true
}

func (s *scanner) where(i int) string {
	p := posAt(s.data, i)
	return fmt.Sprintf("%d:%d", p.Line, p.Col)
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// ends reports whether data[i] ends a token: a blank, a line end, the end.
func (s *scanner) ends(i int) bool {
	return i >= len(s.data) || s.data[i] == ' ' || s.data[i] == '\t' || s.data[i] == '\n' || s.data[i] == '\r'
}

func (s *scanner) endsFlow(i int) bool {
	return s.ends(i) || len(s.flow) > 0 && strings.IndexByte(",[]{}", s.data[i]) >= 0
}

// scan walks the file line by line and returns its first problem.
func (s *scanner) scan() (syntaxProblem, bool) {
	d := s.data
	blockIndent := -1 // inside a block scalar of a line with this indentation
	for i := 0; i < len(d); {
		// The start of a line.
		end := bytes.IndexByte(d[i:], '\n')
		if end < 0 {
			end = len(d)
		} else {
			end += i
		}
		indent := 0
		for i+indent < end && d[i+indent] == ' ' {
			indent++
		}
		j := i + indent
		for j < end && isBlank(d[j]) {
			j++
		}
		empty := j >= end || d[j] == '#' || d[j] == '\r'
		if blockIndent >= 0 {
			if empty || indent > blockIndent {
				i = s.nextLine(end, true)
				continue
			}
			blockIndent = -1
		}
		if !empty && len(s.flow) == 0 && j > i+indent {
			return s.problem(i+indent, "tab in indentation: indent with spaces only")
		}
		if !empty && len(s.flow) > 0 && indent <= s.flow[0].indent && d[j] != ']' && d[j] != '}' {
			o := s.flow[len(s.flow)-1]
			return s.problem(o.at, "%q is not closed: expected %q before line %d", o.c, closer(o.c), posAt(d, i).Line)
		}
		var p syntaxProblem
		var bad, block bool
		i, bad, block, p = s.line(j, end, indent)
		if bad {
			return p, true
		}
		if block {
			blockIndent = indent
		}
		i = s.nextLine(i, blockIndent < 0)
	}
	if len(s.flow) > 0 {
		o := s.flow[len(s.flow)-1]
		return s.problem(o.at, "%q is not closed: expected %q before the end of the file", o.c, closer(o.c))
	}
	return syntaxProblem{}, false
}

// nextLine steps past the line end at i and notes whether the file can
// be cut there.
func (s *scanner) nextLine(i int, clean bool) int {
	if i < len(s.data) {
		i++
	}
	if clean && len(s.flow) == 0 {
		s.safe = append(s.safe, i)
	}
	return i
}

func closer(c byte) byte {
	if c == '[' {
		return ']'
	}
	return '}'
}

// line scans the tokens of one line from i (its first non-blank) to end.
// It returns where it stopped (a line end, maybe on a later line after a
// quoted string), whether it found a problem, and whether a block scalar
// starts after this line.
func (s *scanner) line(i, end, indent int) (next int, bad, block bool, p syntaxProblem) {
	st := step{i: i, end: end, start: true} // at the start of a node: quotes, brackets, aliases count
	for st.i < st.end && !st.stop {
		if s.punct(&st, indent) {
			continue
		}
		if !st.start {
			st.i++
			continue
		}
		s.node(&st)
	}
	if st.stop {
		return st.end, st.bad, st.block, st.p
	}
	return st.end, false, false, p
}

// step is where line is: the position, the end of the line (which a
// quoted string can push on), whether a node starts here, and, once it
// stops early, why.
type step struct {
	i, end    int
	start     bool
	stop, bad bool
	block     bool
	p         syntaxProblem
}

// punct takes blanks, comments and the flow and mapping indicators at
// st.i, and reports whether it did.
func (s *scanner) punct(st *step, indent int) bool {
	d, i := s.data, st.i
	c := d[i]
	switch {
	case isBlank(c) || c == '\r':
	case c == '#' && (i == 0 || isBlank(d[i-1]) || d[i-1] == '\n'):
		st.stop = true
		return true
	case (c == '[' || c == '{') && (st.start || len(s.flow) > 0):
		s.flow = append(s.flow, opener{c: c, at: i, indent: indent})
		st.start = true
	case (c == ']' || c == '}') && (st.start || len(s.flow) > 0):
		if st.p, st.bad = s.close(i); st.bad {
			st.stop = true
			return true
		}
		st.start = false
	case c == ',' && len(s.flow) > 0:
		st.start = true
	case c == ':' && (s.ends(i+1) || len(s.flow) > 0 && s.endsFlow(i+1)):
		st.start = true
	default:
		return false
	}
	st.i++
	return true
}

// node takes what starts a node at st.i: a quoted string, an alias, an
// anchor, a tag, a block indicator, or a plain scalar.
func (s *scanner) node(st *step) {
	d, i := s.data, st.i
	c := d[i]
	switch {
	case c == '\'' || c == '"':
		s.quotedNode(st, c)
		return
	case c == '*':
		name, n := s.name(i + 1)
		if !s.anchors[name] {
			st.p, st.bad = s.problem(i, "unknown alias *%s: no anchor &%s is defined before it", clip(name), clip(name))
			st.stop = true
			return
		}
		st.i += 1 + n
		st.start = false
		return
	case c == '&':
		name, n := s.name(i + 1)
		s.anchors[name] = true
		st.i += 1 + n
		return
	case c == '!':
		for st.i < st.end && !s.endsFlow(st.i) {
			st.i++
		}
		return
	case (c == '-' || c == '?') && s.ends(i+1) && len(s.flow) == 0:
		st.i++
		return
	case (c == '|' || c == '>') && len(s.flow) == 0:
		st.stop, st.block = true, true
		return
	}
	// A plain scalar: on to a ": ", a " #", or (in flow) an indicator.
	st.start = false
	for st.i < st.end && !(d[st.i] == ':' && s.endsFlow(st.i+1)) && !(d[st.i] == '#' && isBlank(d[st.i-1])) &&
		!(len(s.flow) > 0 && strings.IndexByte(",[]{}", d[st.i]) >= 0) {
		st.i++
	}
}

// quotedNode steps over the string quoted with q at st.i, which may go on
// over line ends.
func (s *scanner) quotedNode(st *step, q byte) {
	close, ok := s.quoted(st.i)
	if !ok {
		st.p, st.bad = s.problem(st.i, "unterminated string: the %c here has no closing %c", q, q)
		st.stop = true
		return
	}
	st.i = close + 1
	if close >= st.end { // the string went on over line ends
		st.end = bytes.IndexByte(s.data[st.i:], '\n')
		if st.end < 0 {
			st.end = len(s.data)
		} else {
			st.end += st.i
		}
	}
	st.start = false
}

// close takes the ']' or '}' at i off the open flow collections, or says
// what is wrong with it.
func (s *scanner) close(i int) (syntaxProblem, bool) {
	c := s.data[i]
	if len(s.flow) == 0 {
		return s.problem(i, "%q closes nothing: no '[' or '{' is open", c)
	}
	o := s.flow[len(s.flow)-1]
	if closer(o.c) != c {
		return s.problem(i, "found %q where %q was expected to close the %q at %s", c, closer(o.c), o.c, s.where(o.at))
	}
	s.flow = s.flow[:len(s.flow)-1]
	return syntaxProblem{}, false
}

// quoted returns the offset of the quote that closes the string opened at
// i, and false when the file ends first.
func (s *scanner) quoted(i int) (int, bool) {
	d, q := s.data, s.data[i]
	for j := i + 1; j < len(d); j++ {
		switch {
		case q == '"' && d[j] == '\\':
			j++
		case d[j] == q && q == '\'' && j+1 < len(d) && d[j+1] == '\'':
			j++
		case d[j] == q:
			return j, true
		}
	}
	return 0, false
}

// name reads an anchor or alias name at i and returns it and its length.
func (s *scanner) name(i int) (string, int) {
	j := i
	for j < len(s.data) && !s.endsFlow(j) {
		j++
	}
	return string(s.data[i:j]), j - i
}

// decodes reports whether yaml.v3 takes data as a document.
func decodes(data []byte) bool {
	var n yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&n)
	return err == nil || err.Error() == "EOF"
}

// firstBadLine finds the first line that makes the file fail: the
// shortest prefix, cut at a safe line end, that yaml.v3 refuses. A prefix
// of a block document cut between lines is a block document, so what
// fails first is the line that is wrong (such as a key indented one space
// too few).
func firstBadLine(data []byte, safe []int, yamlMsg string) (syntaxProblem, bool) {
	cuts := append([]int{0}, safe...)
	if cuts[len(cuts)-1] != len(data) {
		cuts = append(cuts, len(data))
	}
	// Find the smallest k with cuts[k] refused; cuts[0] (nothing) is fine.
	lo, hi := 0, len(cuts)-1
	if decodes(data[:cuts[hi]]) {
		return syntaxProblem{}, false
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if decodes(data[:cuts[mid]]) {
			lo = mid
		} else {
			hi = mid
		}
	}
	from, to := cuts[lo], cuts[hi]
	// The bad line is the last non-blank line of the refused part.
	last := from
	for i := from; i < to; {
		end := bytes.IndexByte(data[i:to], '\n')
		if end < 0 {
			end = to
		} else {
			end += i
		}
		if len(bytes.TrimSpace(data[i:end])) > 0 && data[i+firstNonBlank(data[i:end])] != '#' {
			last = i
		}
		i = end + 1
	}
	end := bytes.IndexByte(data[last:], '\n')
	if end < 0 {
		end = len(data)
	} else {
		end += last
	}
	at := last + firstNonBlank(data[last:end])
	if strings.Contains(yamlMsg, "mapping values are not allowed") {
		if c := secondColon(data[last:end]); c >= 0 {
			at = last + c
		}
	}
	return syntaxProblem{pos: posAt(data, at)}, true
}

func firstNonBlank(line []byte) int {
	i := 0
	for i < len(line) && isBlank(line[i]) {
		i++
	}
	return i
}

// secondColon finds the second ": " of a line (the one that starts a
// mapping where a plain value was), outside quotes.
func secondColon(line []byte) int {
	n := 0
	var q byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case (c == '\'' || c == '"') && (i == 0 || line[i-1] == ' '):
			q = c
		case c == '#' && i > 0 && line[i-1] == ' ':
			return -1
		case c == ':' && (i+1 == len(line) || isBlank(line[i+1]) || line[i+1] == '\r'):
			if n++; n == 2 {
				return i
			}
		}
	}
	return -1
}

// maxQuoted is the most characters of a value from the file that an
// error message repeats.
const maxQuoted = 60

// clip shortens s to maxQuoted characters, marking the cut with "…", so a
// message never repeats a whole file (such as /etc/passwd read as a
// scalar).
func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxQuoted {
		return s
	}
	n := 0
	for i := range s {
		if n == maxQuoted {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// shown is a message argument already fit to show, which clipArgs keeps
// whole.
type shown string

// maxErrors is the most errors Parse lists; the rest are counted.
const maxErrors = 100

// capErrors keeps the first maxErrors of a sorted list and says how many
// more there were.
func capErrors(l ErrorList) ErrorList {
	if len(l) <= maxErrors {
		return l
	}
	more := len(l) - maxErrors
	out := append(l[:maxErrors:maxErrors], &Error{File: l[maxErrors].File, Pos: l[maxErrors].Pos,
		Msg: fmt.Sprintf("and %d more errors", more), more: more})
	return out
}
