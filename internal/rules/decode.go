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

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) shown {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		return shown(fmt.Sprintf("%q", clip(n.Value)))
	}
	return "something else"
}

// fields walks a mapping, rejecting unknown and repeated keys, and calls fn
// for every known key in file order.
func (d *decoder) fields(m *yaml.Node, what string, known []string, fn func(key string, k, v *yaml.Node)) {
	seen := make(map[string]bool, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], deref(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "expected a key name in %s, got %s", what, kindName(k))
			continue
		}
		key := k.Value
		if !contains(known, key) {
			d.errorf(k, "unknown key %q in %s: expected one of %s%s", key, what, strings.Join(known, ", "), suggest(key, known))
			continue
		}
		if seen[key] {
			d.errorf(k, "key %q repeated in %s", key, what)
			continue
		}
		seen[key] = true
		fn(key, k, v)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest names the known key closest to a misspelt one, if any is close.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalar returns the node's text if it is a non-null scalar.
func (d *decoder) scalar(n *yaml.Node, what, expected string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, "%s: expected %s, got %s", what, expected, kindName(n))
		return "", false
	}
	return n.Value, true
}

// str returns the text of a group name or description, checked with
// CheckText.
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	s, ok := d.scalar(n, what, "a string")
	if !ok {
		return "", false
	}
	if err := CheckText(what, s); err != nil {
		d.errorf(n, "%v", err)
		return "", false
	}
	return s, true
}

func (d *decoder) intValue(n *yaml.Node, what string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errorf(n, "%s: expected an integer, got %s", what, kindName(n))
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil {
		d.errorf(n, "%s: expected an integer, got %q", what, n.Value)
		return 0, false
	}
	return v, true
}

// seq returns the items of a list node; a null counts as an empty list
// only when nullOK.
func (d *decoder) seq(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list, got %s", what, kindName(n))
		return nil, false
	}
	return n.Content, true
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

func (d *decoder) rules(n *yaml.Node, dir direction.Dir) []Rule {
	items, ok := d.seq(n, dir.Key())
	if !ok {
		return nil
	}
	out := make([]Rule, 0, len(items))
	for _, it := range items {
		it = deref(it)
		d.nrules++
		if d.nrules > d.opts.maxRules() {
			if !d.tooMany {
				d.tooMany = true
				d.errorf(it, "too many rules: this is rule %d, the limit is %d", d.nrules, d.opts.maxRules())
			}
			continue
		}
		if r, ok := d.rule(it, dir); ok {
			out = append(out, r)
		}
	}
	return out
}

func (d *decoder) rule(n *yaml.Node, dir direction.Dir) (Rule, bool) {
	what := dir.Key() + " rule"
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping such as {proto: tcp, ports: 443, from: [any]}, got %s", what, kindName(n))
		return Rule{}, false
	}
	if dir == direction.Egress {
		return d.traffic(d.egressLimit(n), what, dir, nil, nil)
	}
	var lim *Limit
	r, ok := d.traffic(n, what, dir, []string{"limit"}, func(_ string, k, v *yaml.Node) { lim = d.limit(k, v, dir) })
	r.Limit = lim
	return r, ok
}

// traffic reads a rule's keys (proto, ports, icmp, from or to,
// description) from mapping n, plus the extra keys, which it hands to
// extra. It reports whether no error was found, in extra's keys too.
func (d *decoder) traffic(n *yaml.Node, what string, dir direction.Dir, extraKeys []string, extra func(key string, k, v *yaml.Node)) (Rule, bool) {
	peerKey := dir.PeerWord()
	errsBefore := len(d.errs)
	r := Rule{Pos: pos(n)}
	var protoNode, portsNode, icmpNode, peersNode *yaml.Node
	keys := append(extraKeys[:len(extraKeys):len(extraKeys)], "proto", "ports", "icmp", peerKey, "description")
	if len(extraKeys) == 1 && extraKeys[0] == "limit" { // a rule's own key, said after the others
		keys = append(keys[1:], "limit")
	}
	d.fields(n, what, keys, func(key string, k, v *yaml.Node) {
		if contains(extraKeys, key) {
			extra(key, k, v)
			return
		}
		switch key {
		case "proto":
			protoNode = v
		case "ports":
			portsNode = k
			r.Ports = d.ports(v)
		case "icmp":
			icmpNode = k
			r.ICMP = d.icmp(v)
		case "description":
			r.Description, _ = d.str(v, "rule description")
		default: // from or to
			peersNode = v
		}
	})
	if protoNode == nil {
		d.errorf(n, "%s without proto: expected proto: tcp, udp, icmp, icmpv6, all or a number", what)
	} else if s, ok := d.scalar(protoNode, "proto", "tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255"); ok {
		p, err := ParseProto(s)
		if err != nil {
			d.errorf(protoNode, "%v", err)
		} else {
			r.Proto = p
			if portsNode != nil && !p.HasPorts() {
				d.errorf(portsNode, "ports on proto %s: only tcp and udp rules take ports", p)
			}
			if icmpNode != nil && !p.IsICMP() {
				d.errorf(icmpNode, "icmp on proto %s: only icmp and icmpv6 rules take an icmp type", p)
			}
		}
	}
	if peersNode == nil {
		d.errorf(n, "%s without %s: expected %s: [CIDR, address, prefix list or any]", what, peerKey, peerKey)
	} else {
		r.Peers, r.Prefixes = d.peers(peersNode, peerKey)
	}
	return r, len(d.errs) == errsBefore
}

// ports reads an int, a "lo-hi" string, or a list of those.
func (d *decoder) ports(n *yaml.Node) []PortRange {
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			d.errorf(n, "ports is an empty list: leave ports out for all ports")
			return nil
		}
		out := make([]PortRange, 0, len(n.Content))
		for _, it := range n.Content {
			if r, ok := d.portRange(deref(it)); ok {
				out = append(out, r)
			}
		}
		return out
	}
	if r, ok := d.portRange(n); ok {
		return []PortRange{r}
	}
	return nil
}

func (d *decoder) portRange(n *yaml.Node) (PortRange, bool) {
	const expected = "a port 0-65535 or a range \"lo-hi\""
	s, ok := d.scalar(n, "port", expected)
	if !ok {
		return PortRange{}, false
	}
	r, err := ParsePortRange(s)
	if err != nil {
		d.errorf(n, "%v", err)
		return PortRange{}, false
	}
	return r, true
}

// ParsePortRange reads "443", "1024-65535" (or "1024:65535"). Port 0 is
// refused, alone or as the start of a range, as ufw refuses it: it is no
// service, and a rule for every port leaves ports out.
func ParsePortRange(s string) (PortRange, error) {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "-") {
		return PortRange{}, fmt.Errorf("bad port %s: expected a port 0-65535 or a range \"lo-hi\"", clip(t))
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		lo, hi, isRange = strings.Cut(s, ":")
	}
	a, err := parsePort(strings.TrimSpace(lo))
	if err != nil {
		return PortRange{}, err
	}
	if a == 0 && !isRange {
		return PortRange{}, fmt.Errorf("bad port %q: port 0 is no service (expected 1-65535)", s)
	}
	if a == 0 {
		return PortRange{}, fmt.Errorf("bad port range %q: port 0 is no service (start at 1, or leave ports out for all ports)", s)
	}
	if !isRange {
		return PortRange{a, a}, nil
	}
	b, err := parsePort(strings.TrimSpace(hi))
	if err != nil {
		return PortRange{}, err
	}
	if b < a {
		return PortRange{}, fmt.Errorf("inverted port range %q: expected the low port first", clip(s))
	}
	return PortRange{a, b}, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad port %q: expected a port 0-65535 or a range \"lo-hi\"", clip(s))
	}
	if n > 65535 {
		return 0, fmt.Errorf("port %d out of range: expected 0-65535", n)
	}
	return uint16(n), nil
}

func (d *decoder) icmp(n *yaml.Node) *ICMP {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "icmp: expected a mapping {type: T, code: C}, got %s", kindName(n))
		return nil
	}
	var typ, code *yaml.Node
	d.fields(n, "icmp", []string{"type", "code"}, func(key string, k, v *yaml.Node) {
		if key == "type" {
			typ = v
		} else {
			code = v
		}
	})
	if typ == nil {
		if code != nil {
			d.errorf(n, "icmp code without type: expected type: T (code is optional)")
		} else {
			d.errorf(n, "icmp without type: expected {type: T} or leave icmp out for every type")
		}
		return nil
	}
	out := &ICMP{AnyCode: true}
	t, ok := d.intValue(typ, "icmp type")
	if !ok {
		return nil
	}
	if t < 0 || t > 255 {
		d.errorf(typ, "icmp type %d out of range: expected 0-255", t)
		return nil
	}
	out.Type = uint8(t)
	if code != nil {
		c, ok := d.intValue(code, "icmp code")
		if !ok {
			return nil
		}
		if c < 0 || c > 255 {
			d.errorf(code, "icmp code %d out of range: expected 0-255", c)
			return nil
		}
		out.Code, out.AnyCode = uint8(c), false
	}
	return out
}

var (
	any4 = netip.MustParsePrefix("0.0.0.0/0")
	any6 = netip.MustParsePrefix("::/0")
)

func (d *decoder) peers(n *yaml.Node, key string) ([]string, []netip.Prefix) {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		items = n.Content
	case yaml.ScalarNode:
		if n.Tag != "!!null" {
			items = []*yaml.Node{n}
		}
	}
	if n.Kind == yaml.SequenceNode && len(items) == 0 {
		d.errorf(n, "%s is an empty list: expected at least one CIDR, address, prefix list name or any", key)
		return nil, nil
	}
	if len(items) == 0 {
		d.errorf(n, "%s: expected a list of CIDRs, addresses, prefix list names or any, got %s", key, kindName(n))
		return nil, nil
	}
	words := make([]string, 0, len(items))
	var out []netip.Prefix
	seen := map[netip.Prefix]bool{}
	add := func(p netip.Prefix) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, it := range items {
		it = deref(it)
		s, ok := d.scalar(it, key+" entry", "a CIDR, an address, a prefix list name or any")
		if !ok {
			continue
		}
		words = append(words, s)
		if ps, ok := builtinPeer(s); ok {
			for _, p := range ps {
				add(p)
			}
			continue
		}
		if pl := d.lists[s]; pl != nil {
			if len(pl.Prefixes) == 0 {
				d.errorf(it, "prefix list %q is empty: a rule from it would match nothing; add a CIDR to the list or remove it from the rule", s)
				continue
			}
			for _, p := range pl.Prefixes {
				add(p)
			}
			continue
		}
		if listName.MatchString(s) && !strings.Contains(s, ":") {
			d.errorf(it, "undefined prefix list %q: define it under prefix_lists, or write a CIDR or any", s)
			continue
		}
		if p, ok := d.prefix(it, s); ok {
			add(p)
		}
	}
	return words, out
}

// Hash is a rules file's identity: the sha256 of its bytes, in hex, as
// File.Hash, status and the history show it.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
