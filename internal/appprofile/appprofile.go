// Package appprofile reads application profiles in ufw's format, so
// that `fwctl allow 'Nginx Full'` works as `ufw allow 'Nginx Full'`
// does, from the same files.
//
// A profile file is INI-like: one or more sections, each an application,
//
//	[Nginx Full]
//	title=Web Server (Nginx, HTTP + HTTPS)
//	description=Small, but very powerful and efficient web server
//	ports=80,443/tcp
//
// title, description and ports are required, each once (keys are
// case-insensitive; "=" or ":" separates key and value; lines starting
// with # or ; are comments; an indented line continues the value above
// it). ports is one or more groups separated by "|", each a comma list
// of ports and ranges (N:M) with an optional /tcp or /udp: "80,443/tcp",
// "53|123/udp", "60000:61000/udp". A group without a protocol means tcp
// and udp; a range needs one, as in ufw. A name starts with a letter or
// digit and holds letters, digits, spaces and _ - . + (ufw's rule), and
// is not all digits.
//
// Load reads directories of such files; a bad file is reported with its
// name and line and skipped, and the other files still count.
package appprofile

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Profile is one application.
type Profile struct {
	Name        string
	Title       string
	Description string
	Ports       []Ports
	// File and Line are where the profile's section starts.
	File string
	Line int
}

// Ports is one "|"-separated group of a profile's ports.
type Ports struct {
	Proto  string  // "tcp" or "udp"; "" means both
	Ranges []Range // at least one
}

// Range is an inclusive range of ports; Lo == Hi for one port.
type Range struct{ Lo, Hi uint16 }

func (r Range) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + ":" + strconv.Itoa(int(r.Hi))
}

// String is the group as ufw's app info prints it: "80,443/tcp".
func (p Ports) String() string {
	s := make([]string, len(p.Ranges))
	for i, r := range p.Ranges {
		s[i] = r.String()
	}
	out := strings.Join(s, ",")
	if p.Proto != "" {
		out += "/" + p.Proto
	}
	return out
}

// Error is a problem in a profile file, at a line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Limits on what a profile file may hold.
const (
	MaxFileBytes = 1 << 20
	MaxNameLen   = 64
	MaxTextLen   = 1024
	// maxListPorts is ufw's limit on one group's ports, a range counting
	// as two (iptables multiport's).
	maxListPorts = 15
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 _.+-]*$`)

// CheckName reports whether s may name a profile.
func CheckName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty profile name")
	case len(s) > MaxNameLen:
		return fmt.Errorf("profile name of %d bytes: at most %d", len(s), MaxNameLen)
	case !nameRE.MatchString(s):
		return fmt.Errorf("bad profile name %q: expected a letter or digit, then letters, digits, spaces, _ - . +", s)
	case strings.Trim(s, "0123456789") == "":
		return fmt.Errorf("bad profile name %q: a name is not a number (that would be a port)", s)
	}
	return nil
}

// Parse reads one profile file; name is used in errors. Any error makes
// the whole file invalid: it returns the first, and the names of the
// sections it saw (so that a caller can say which applications the bad
// file would have defined).
func Parse(name string, data []byte) ([]Profile, []string, error) {
	if len(data) > MaxFileBytes {
		return nil, nil, &Error{name, 1, fmt.Sprintf("file of %d bytes: at most %d", len(data), MaxFileBytes)}
	}
	p := parser{file: name, seen: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxFileBytes+1)
	for sc.Scan() {
		p.line++
		p.feed(sc.Text())
	}
	if err := sc.Err(); err != nil && p.err == nil {
		p.err = &Error{name, p.line + 1, fmt.Sprintf("read: %v", err)}
	}
	p.finish()
	if p.err == nil && len(p.out) == 0 {
		p.err = &Error{name, 1, "no profiles: expected a [Name] section with title, description and ports"}
	}
	if p.err != nil {
		return nil, p.names, p.err
	}
	return p.out, p.names, nil
}

type parser struct {
	file  string
	line  int
	out   []Profile
	names []string
	seen  map[string]int // section name -> line
	cur   *Profile
	keys  map[string]int // key -> line, in the current section
	last  string         // the key a continuation line extends
	err   *Error
}

func (p *parser) fail(line int, format string, args ...any) {
	if p.err == nil {
		p.err = &Error{p.file, line, fmt.Sprintf(format, args...)}
	}
}

func (p *parser) feed(raw string) {
	if !utf8Valid(raw) {
		p.fail(p.line, "not valid UTF-8")
		return
	}
	line := strings.TrimRight(raw, " \t\r")
	trimmed := strings.TrimLeft(line, " \t")
	switch {
	case trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';':
		p.last = ""
		return
	case trimmed != line && p.cur != nil && p.last != "":
		// A continuation of the value above.
		p.setValue(p.last, p.value(p.last)+" "+trimmed, true)
		return
	case trimmed[0] == '[':
		p.section(trimmed)
		return
	}
	k, v, ok := cutKey(trimmed)
	if !ok {
		p.fail(p.line, "expected [Name], key=value or a comment, got %q", clip(trimmed))
		return
	}
	if p.cur == nil {
		p.fail(p.line, "key %q before any [Name] section", clip(k))
		return
	}
	k = strings.ToLower(k)
	switch k {
	case "title", "description", "ports":
	default:
		p.fail(p.line, "unknown key %q: expected title, description or ports", clip(k))
		return
	}
	if first, dup := p.keys[k]; dup {
		p.fail(p.line, "key %q repeated in [%s] (first at line %d)", k, p.cur.Name, first)
		return
	}
	p.keys[k] = p.line
	p.last = k
	p.setValue(k, v, false)
}

func (p *parser) value(k string) string {
	switch k {
	case "title":
		return p.cur.Title
	case "description":
		return p.cur.Description
	}
	return ""
}

func (p *parser) setValue(k, v string, cont bool) {
	if len(v) > MaxTextLen {
		p.fail(p.line, "%s of %d bytes: at most %d", k, len(v), MaxTextLen)
		return
	}
	if hidden(v) {
		p.fail(p.line, "%s holds a control character: expected printable text", k)
		return
	}
	switch k {
	case "title":
		p.cur.Title = v
	case "description":
		p.cur.Description = v
	case "ports":
		if cont {
			p.fail(p.line, "ports continued on another line: write ports on one line")
			return
		}
		ports, err := ParsePorts(v)
		if err != nil {
			p.fail(p.line, "%v", err)
			return
		}
		p.cur.Ports = ports
	}
}

func (p *parser) section(s string) {
	p.finish()
	if !strings.HasSuffix(s, "]") {
		p.fail(p.line, "section %q not closed: expected [Name]", clip(s))
		return
	}
	name := strings.TrimSpace(s[1 : len(s)-1])
	if err := CheckName(name); err != nil {
		p.fail(p.line, "%v", err)
		return
	}
	p.names = append(p.names, name)
	if first, dup := p.seen[name]; dup {
		p.fail(p.line, "profile [%s] defined twice in this file (first at line %d)", name, first)
		return
	}
	p.seen[name] = p.line
	p.cur = &Profile{Name: name, File: p.file, Line: p.line}
	p.keys = map[string]int{}
	p.last = ""
}

// finish closes the current section, checking it has every key.
func (p *parser) finish() {
	if p.cur == nil {
		return
	}
	for _, k := range []string{"title", "description", "ports"} {
		if _, ok := p.keys[k]; !ok {
			p.fail(p.cur.Line, "profile [%s] without %s: expected title, description and ports", p.cur.Name, k)
		}
	}
	if p.err == nil {
		p.out = append(p.out, *p.cur)
	}
	p.cur = nil
}

// cutKey splits "key=value" or "key: value".
func cutKey(s string) (k, v string, ok bool) {
	i := strings.IndexAny(s, "=:")
	if i <= 0 {
		return "", "", false
	}
	return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:]), true
}

// ParsePorts reads a ports value: groups separated by "|".
func ParsePorts(s string) ([]Ports, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty ports: expected e.g. 80,443/tcp or 53|123/udp")
	}
	var out []Ports
	for _, g := range strings.Split(s, "|") {
		g = strings.TrimSpace(g)
		list, proto, hasProto := strings.Cut(g, "/")
		var ps Ports
		if hasProto {
			switch strings.ToLower(proto) {
			case "tcp", "udp":
				ps.Proto = strings.ToLower(proto)
			default:
				return nil, fmt.Errorf("bad protocol %q in ports %q: expected tcp or udp", clip(proto), clip(g))
			}
		}
		if list == "" {
			return nil, fmt.Errorf("no port in %q: expected e.g. 80,443/tcp", clip(g))
		}
		count := 0
		for _, it := range strings.Split(list, ",") {
			r, err := parseRange(strings.TrimSpace(it), g)
			if err != nil {
				return nil, err
			}
			if r.Lo != r.Hi {
				if !hasProto {
					return nil, fmt.Errorf("port range %q without a protocol: write %s/tcp or %s/udp", clip(it), clip(list), clip(list))
				}
				count++
			}
			count++
			ps.Ranges = append(ps.Ranges, r)
		}
		if count > maxListPorts {
			return nil, fmt.Errorf("too many ports in %q: at most %d, a range counting as 2", clip(g), maxListPorts)
		}
		out = append(out, ps)
	}
	return out, nil
}

func parseRange(s, group string) (Range, error) {
	lo, hi, isRange := strings.Cut(s, ":")
	a, err := port(lo, group)
	if err != nil {
		return Range{}, err
	}
	if !isRange {
		return Range{a, a}, nil
	}
	b, err := port(hi, group)
	if err != nil {
		return Range{}, err
	}
	if b < a {
		return Range{}, fmt.Errorf("reversed port range %q in %q: the low port comes first", clip(s), clip(group))
	}
	return Range{a, b}, nil
}

func port(s, group string) (uint16, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || s[0] == '+' {
		return 0, fmt.Errorf("bad port %q in %q: expected 1-65535 (a service name is not a port here)", clip(s), clip(group))
	}
	return uint16(n), nil
}

// clip shortens a value repeated in a message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
