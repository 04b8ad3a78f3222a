package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/types/direction"
	"gopkg.in/yaml.v3"
)

// Load reads and decodes the rules file at path. On any problem it returns
// a nil File and an ErrorList naming every error found (or, when the file
// cannot be read, the read error). It reads with ReadFile.
func Load(path string, opts Options) (*File, error) {
	data, err := ReadFile(path, opts.maxFileBytes())
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse decodes a rules file held in memory; name is used in errors.
func Parse(name string, data []byte, opts Options) (*File, error) {
	d := decoder{file: name, opts: opts, lists: map[string]*PrefixList{}, lines: lineCount(data)}
	f := d.decode(data)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i].Pos, d.errs[j].Pos
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		})
		return nil, capErrors(d.errs)
	}
	f.Path = name
	f.Hash = Hash(data)
	f.Warnings = d.warns
	f.assignIDs()
	return f, nil
}

type decoder struct {
	file   string
	opts   Options
	errs   ErrorList
	warns  []*Error
	lists  map[string]*PrefixList
	refs   []groupRefAt // group references met, checked after the groups
	nrules int
	// tooMany is set once the rule limit is passed, so it is said once.
	tooMany bool
	// lines is how many lines the file has, as YAML counts them: no
	// position is placed past the last.
	lines int
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Pos: d.pos(n), Msg: fmt.Sprintf(format, clipArgs(args)...)})
}

func (d *decoder) warnf(n *yaml.Node, format string, args ...any) {
	d.warns = append(d.warns, &Error{File: d.file, Pos: d.pos(n), Msg: fmt.Sprintf(format, clipArgs(args)...)})
}

// pos is n's place, kept within the file: yaml.v3 places an empty
// document ("---" alone) on the line after the last.
func (d *decoder) pos(n *yaml.Node) Pos {
	p := pos(n)
	if d.lines > 0 && p.Line > d.lines {
		p = Pos{Line: d.lines, Col: 1}
	}
	return p
}

// lineCount is how many lines data has as YAML counts them: a line ends
// at \n, \r\n or a lone \r (as old Mac files have it).
func lineCount(data []byte) int {
	return bytes.Count(data, []byte{'\n'}) + bytes.Count(data, []byte{'\r'}) - bytes.Count(data, []byte("\r\n")) + 1
}

// clipArgs shortens the strings among a message's arguments, which are
// values from the file, to what a message should repeat. A shown string
// is already short.
func clipArgs(args []any) []any {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = clip(s)
		}
	}
	return args
}

func pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{Line: 1, Col: 1}
	}
	return Pos{Line: n.Line, Col: n.Column}
}

// yamlLine finds the line number in yaml.v3's syntax errors ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) decode(data []byte) *File {
	if len(bytes.TrimSpace(data)) == 0 {
		d.errs = append(d.errs, &Error{File: d.file, Pos: Pos{1, 1}, Msg: "empty file: expected a rules file starting with \"version: 1\""})
		return nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errs = append(d.errs, &Error{File: d.file, Pos: Pos{1, 1}, Msg: "empty file: expected a rules file starting with \"version: 1\""})
			return nil
		}
		d.syntaxError(data, err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "a second YAML document: expected one rules document per file")
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.errs = append(d.errs, &Error{File: d.file, Pos: Pos{1, 1}, Msg: "empty file: expected a rules file starting with \"version: 1\""})
			return nil
		}
		root = root.Content[0]
	}
	root = deref(root)
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "expected a mapping with keys version, prefix_lists, acl and groups, got %s", kindName(root))
		return nil
	}
	f := &File{}
	var versionNode, listsNode, groupsNode, aclKey, aclNode *yaml.Node
	d.fields(root, "rules file", []string{"version", "prefix_lists", "acl", "groups", "failsafe"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "failsafe":
			f.Failsafe = d.failsafe(k, v)
		case "acl":
			aclKey, aclNode = k, v
		case "version":
			versionNode = v
		case "prefix_lists":
			listsNode = v
		case "groups":
			groupsNode = v
		}
	})
	switch {
	case versionNode == nil:
		d.errorf(root, "missing version: expected \"version: 1\" at the top")
	default:
		v, ok := d.intValue(versionNode, "version")
		if ok && v != 1 {
			d.errorf(versionNode, "unsupported version %d: expected 1", v)
		}
		f.Version = int(v)
	}
	if listsNode != nil {
		f.PrefixLists = d.prefixLists(listsNode)
	}
	if groupsNode == nil {
		d.errorf(root, "missing groups: expected a list of at least one group")
	} else {
		f.Groups = d.groups(groupsNode)
		d.checkGroupRefs(f.Groups)
	}
	if aclNode != nil {
		f.ACL = d.acl(aclKey, aclNode)
	}
	return f
}

func (d *decoder) syntaxError(data []byte, err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, m := range te.Errors {
			d.errs = append(d.errs, &Error{File: d.file, Pos: Pos{1, 1}, Msg: m})
		}
		return
	}
	msg := err.Error()
	if p, ok := locateSyntax(data, msg); ok {
		if p.msg == "" {
			p.msg = strings.TrimPrefix(msg, "yaml: ")
			if m := yamlLine.FindStringSubmatch(msg); m != nil {
				p.msg = m[2]
			}
		}
		d.errs = append(d.errs, &Error{File: d.file, Pos: p.pos, Msg: "YAML syntax: " + p.msg})
		return
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.errs = append(d.errs, &Error{File: d.file, Pos: Pos{line, 1}, Msg: "YAML syntax: " + m[2]})
		return
	}
	d.errs = append(d.errs, &Error{File: d.file, Pos: Pos{1, 1}, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")})
}

var listName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)

// builtinPeer resolves the peer words that stand for fixed prefixes:
// any (both families), any4 and any6.
func builtinPeer(s string) ([]netip.Prefix, bool) {
	switch s {
	case "any":
		return []netip.Prefix{any4, any6}, true
	case "any4":
		return []netip.Prefix{any4}, true
	case "any6":
		return []netip.Prefix{any6}, true
	}
	return nil, false
}

// reservedPeer are peer words that are not prefix-list names.
var reservedPeer = []string{"any", "any4", "any6"}

func (d *decoder) prefixLists(n *yaml.Node) []PrefixList {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "prefix_lists: expected a mapping of name: [CIDR, ...], got %s", kindName(n))
		return nil
	}
	// Every list's name, so that an entry naming a list (before or after
	// it) is told that lists do not nest.
	names := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && listName.MatchString(k.Value) {
			names[k.Value] = true
		}
	}
	var out []PrefixList
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		name := k.Value
		switch {
		case k.Kind != yaml.ScalarNode:
			d.errorf(k, "prefix list name: expected a name, got %s", kindName(k))
			continue
		case !listName.MatchString(name):
			d.errorf(k, "bad prefix list name %q: expected a letter then letters, digits, '_', '.' or '-'", name)
			continue
		case contains(reservedPeer, name):
			d.errorf(k, "prefix list name %q is reserved: pick another name", name)
			continue
		case d.lists[name] != nil:
			d.errorf(k, "prefix list %q defined twice (first at line %d)", name, d.lists[name].Pos.Line)
			continue
		}
		items, ok := d.seq(v, "prefix list "+strconv.Quote(name))
		if !ok {
			continue
		}
		pl := PrefixList{Name: name, Pos: pos(k)}
		for _, it := range items {
			it = deref(it)
			s, ok := d.scalar(it, "prefix list entry", "a CIDR or an address")
			if !ok {
				continue
			}
			if names[s] {
				d.errorf(it, "prefix list %q names prefix list %q: prefix lists do not nest, expected a CIDR or an address (copy its entries here)", name, s)
				continue
			}
			if p, ok := d.prefix(it, s); ok {
				pl.Prefixes = append(pl.Prefixes, p)
			}
		}
		out = append(out, pl)
		d.lists[name] = &out[len(out)-1]
	}
	// Re-point the map at the final slice elements (append may have moved them).
	for i := range out {
		d.lists[out[i].Name] = &out[i]
	}
	return out
}

// prefix parses a CIDR or a bare address into a canonical prefix.
func (d *decoder) prefix(n *yaml.Node, s string) (netip.Prefix, bool) {
	p, hostBits, err := ParsePrefix(s)
	if err != nil {
		d.errorf(n, "%v", err)
		return netip.Prefix{}, false
	}
	if hostBits {
		d.warnf(n, "CIDR %s has host bits set: using %s", s, p)
	}
	return p, true
}

func (d *decoder) groups(n *yaml.Node) []Group {
	items, ok := d.seq(n, "groups")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(n, "groups is empty: expected at least one group")
		return nil
	}
	out := make([]Group, 0, len(items))
	names := map[string]int{}
	for _, it := range items {
		it = deref(it)
		if it.Kind != yaml.MappingNode {
			d.errorf(it, "group: expected a mapping with name, description, ingress and egress, got %s", kindName(it))
			continue
		}
		g := Group{Pos: pos(it), EgressOmitted: true}
		var nameNode *yaml.Node
		d.fields(it, "group", []string{"name", "description", "interfaces", "mode", "ingress", "egress"}, func(key string, k, v *yaml.Node) {
			switch key {
			case "name":
				nameNode = v
				if s, ok := d.str(v, "group name"); ok {
					if strings.TrimSpace(s) == "" {
						d.errorf(v, "group name is empty: expected a name")
					}
					g.Name = s
				}
			case "description":
				g.Description, _ = d.str(v, "group description")
			case "interfaces":
				g.Interfaces, g.IfacePos = d.interfaces(v), pos(v)
			case "mode":
				if s, ok := d.scalar(v, "group mode", "enforce or audit"); ok {
					switch s {
					case "enforce":
					case "audit":
						g.Audit = true
					default:
						d.errorf(v, "bad group mode %q: expected enforce or audit", s)
					}
				}
			case "ingress":
				if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
					return // "ingress:" with nothing: no ingress, as when omitted
				}
				g.Ingress = d.rules(v, direction.Ingress)
			case "egress":
				if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
					d.errorf(v, "egress is null: write \"egress: []\" for no outbound traffic, or leave egress out to allow all outbound")
					return
				}
				g.EgressOmitted = false
				g.Egress = d.rules(v, direction.Egress)
			}
		})
		if nameNode == nil {
			d.errorf(it, "group without a name: expected name: NAME")
		} else if g.Name != "" {
			if line, dup := names[g.Name]; dup {
				d.errorf(nameNode, "duplicate group name %q (first at line %d)", g.Name, line)
			} else {
				names[g.Name] = nameNode.Line
			}
		}
		out = append(out, g)
	}
	return out
}

var (
	any4 = netip.MustParsePrefix("0.0.0.0/0")
	any6 = netip.MustParsePrefix("::/0")
)

// Hash is a rules file's identity: the sha256 of its bytes, in hex, as
// File.Hash, status and the history show it.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
