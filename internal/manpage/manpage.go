// Package manpage writes the man pages of fwd and fwctl (man/fwd.8,
// man/fwctl.8) in roff's man macros, from the same text their --help
// prints: the commands' tests build a Page from their usage and flag
// definitions and compare it with the committed page (`make man`
// rewrites it), so that the two cannot drift apart.
package manpage

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Page is one man page.
type Page struct {
	Name     string // "fwd"
	Section  int    // 8
	Summary  string // the NAME line's text after "fwd \- "
	Manual   string // the centre header, "System Manager's Manual"
	Synopsis []string
	Sections []Section
}

// Section is a titled part of a Page: paragraphs, then tagged items.
type Section struct {
	Title string
	Paras []string
	Items []Item
}

// Item is a tagged paragraph: an option, a command, an exit code.
type Item struct {
	Tag  string
	Text string
}

// Write renders p. Text is escaped; nothing in it is taken as a macro.
func (p Page) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, ".\\\" Generated from %s --help by `make man`; do not edit.\n", p.Name)
	fmt.Fprintf(bw, ".TH %s %d \"\" \"fwd\" \"%s\"\n", strings.ToUpper(p.Name), p.Section, escape(p.Manual))
	fmt.Fprintf(bw, ".SH NAME\n%s \\- %s\n", p.Name, escape(p.Summary))
	fmt.Fprintln(bw, ".SH SYNOPSIS")
	for i, s := range p.Synopsis {
		if i > 0 {
			fmt.Fprintln(bw, ".br")
		}
		fmt.Fprintf(bw, "%s\n", escape(s))
	}
	for _, s := range p.Sections {
		fmt.Fprintf(bw, ".SH %s\n", strings.ToUpper(s.Title))
		for i, para := range s.Paras {
			if i > 0 {
				fmt.Fprintln(bw, ".PP")
			}
			fmt.Fprintln(bw, escape(para))
		}
		for _, it := range s.Items {
			fmt.Fprintf(bw, ".TP\n.B %s\n%s\n", escape(it.Tag), escape(it.Text))
		}
	}
	return bw.Flush()
}

// escape makes text safe for roff: backslashes and hyphens escaped, and
// no line starting with a control character.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// FlagItems parses the flag list that Go's flag.PrintDefaults writes
// (the "flags:" part of fwd --help) into one Item per flag, tagged with
// the flag's long form: "  -rules file\n    \tthe rules file" becomes
// {"--rules file", "the rules file"}.
func FlagItems(defaults string) ([]Item, error) {
	var items []Item
	for _, line := range strings.Split(strings.TrimRight(defaults, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			items = append(items, Item{Tag: "-" + strings.TrimSpace(line)})
		case strings.HasPrefix(line, "    \t") && len(items) > 0:
			it := &items[len(items)-1]
			if it.Text != "" {
				it.Text += " "
			}
			it.Text += strings.TrimSpace(line)
		default:
			return nil, fmt.Errorf("flag defaults: unexpected line %q", line)
		}
	}
	return items, nil
}
