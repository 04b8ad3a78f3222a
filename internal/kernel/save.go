package kernel

import (
	"errors"
	"strings"
)

// Tables is what iptables-save printed, by table name.
type Tables map[string]*Table

// Table is one table of an iptables-save dump.
type Table struct {
	Chains []Chain
	Rules  []Rule
}

// Chain is a chain declaration: ":NAME POLICY [packets:bytes]".
type Chain struct {
	Name   string
	Policy string // ACCEPT, DROP for built-in chains; "-" for user chains
}

// Rule is one "-A CHAIN spec" line.
type Rule struct {
	Chain string
	// Spec is the line without "-A ": "CHAIN -p tcp -j ACCEPT". It can be
	// given back to iptables-restore after -D.
	Spec string
	// Target is the argument of -j or -g, when there is one.
	Target string
}

func (r Rule) jumpsTo(owned func(string) bool) bool {
	return r.Target != "" && owned(r.Target)
}

// emptyWithout reports whether the table holds nothing but built-in
// chains with policy ACCEPT, once chains for which skip is true (and rules
// jumping to them) are left out.
func (t *Table) emptyWithout(skip func(string) bool) bool {
	if skip == nil {
		skip = func(string) bool { return false }
	}
	for _, c := range t.Chains {
		if skip(c.Name) {
			continue
		}
		if c.Policy != "ACCEPT" {
			return false
		}
	}
	for _, r := range t.Rules {
		if skip(r.Chain) || r.jumpsTo(skip) {
			continue
		}
		return false
	}
	return true
}

// ParseSave reads iptables-save output. Lines it does not know are
// ignored; iptables-save is the only writer.
func ParseSave(s string) Tables {
	out := Tables{}
	var cur *Table
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '*':
			cur = &Table{}
			out[line[1:]] = cur
		case line == "COMMIT":
			cur = nil
		case cur == nil:
		case line[0] == ':':
			f := strings.Fields(line[1:])
			if len(f) >= 2 {
				cur.Chains = append(cur.Chains, Chain{Name: f[0], Policy: f[1]})
			}
		case strings.HasPrefix(line, "-A "):
			spec := line[3:]
			f := strings.Fields(spec)
			r := Rule{Chain: f[0], Spec: spec}
			for i := 1; i+1 < len(f); i++ {
				if f[i] == "-j" || f[i] == "-g" || f[i] == "--jump" || f[i] == "--goto" {
					r.Target = f[i+1]
				}
			}
			cur.Rules = append(cur.Rules, r)
		}
	}
	return out
}

// Normalize returns iptables-save output with what changes by itself left
// out: comments (timestamps) and counters. Two normalized dumps are equal
// when the rules are.
func Normalize(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, ":") {
			if i := strings.LastIndex(line, " ["); i > 0 {
				line = line[:i]
			}
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func joinErrors(errs []error) error { return errors.Join(errs...) }
