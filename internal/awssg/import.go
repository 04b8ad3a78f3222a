package awssg

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"gopkg.in/yaml.v3"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Name is the input as the header comment of the written file names
	// it (a file name); empty leaves it out.
	Name string
	// GroupIDs and Names select groups: a group is imported when its
	// GroupId is in GroupIDs or its GroupName in Names. Both empty
	// imports every group. A selector that matches no group is an error.
	GroupIDs []string
	Names    []string
	// PrefixLists are the CIDRs of managed prefix lists, by id
	// (pl-0123...). A rule that names a prefix list not here is left out
	// with a warning.
	PrefixLists map[string][]netip.Prefix
}

// Result is an imported rules file.
type Result struct {
	// YAML is the rules file; rules.Parse accepts it.
	YAML []byte
	// Warnings name what was left out or changed, one sentence each,
	// e.g. "sg-0123 ingress tcp 5432 from sg-0456: a reference to
	// another security group has no meaning on one host: left out".
	Warnings []string
	Source   Source
	Groups   int
}

// Import converts the output of `aws ec2 describe-security-groups` or
// `aws ec2 describe-security-group-rules` into a version 1 rules file:
// one group per security group, its descriptions kept. Malformed input is
// a *PathError or a *SyntaxError, and no Result.
func Import(data []byte, opts ImportOptions) (*Result, error) {
	doc, err := read(data)
	if err != nil {
		return nil, err
	}
	groups, err := selectGroups(doc.groups, opts)
	if err != nil {
		return nil, err
	}
	im := importer{opts: opts, refs: map[string]string{}}
	names := make([]string, len(groups))
	taken := map[string]bool{}
	for i, g := range groups {
		names[i] = uniqueName(g, taken)
		taken[names[i]] = true
		for _, k := range []string{g.id, g.name} {
			if _, dup := im.refs[k]; k != "" && !dup {
				im.refs[k] = names[i]
			}
		}
	}
	var out []outGroup
	for i, g := range groups {
		og, err := im.group(g, names[i])
		if err != nil {
			return nil, err
		}
		out = append(out, og)
	}
	text := im.write(doc.source, out)
	if _, err := rules.Parse("imported", text, rules.Options{}); err != nil {
		return nil, fmt.Errorf("the imported rules do not validate (a bug in fwctl import): %w", err)
	}
	return &Result{YAML: text, Warnings: im.warns, Source: doc.source, Groups: len(out)}, nil
}

func selectGroups(all []sgroup, opts ImportOptions) ([]sgroup, error) {
	if len(opts.GroupIDs) == 0 && len(opts.Names) == 0 {
		if len(all) == 0 {
			return nil, &PathError{Path: "top level", Msg: "no security groups in the input"}
		}
		return all, nil
	}
	for _, id := range opts.GroupIDs {
		if !slices.ContainsFunc(all, func(g sgroup) bool { return g.id == id }) {
			return nil, fmt.Errorf("no security group with GroupId %q in the input", id)
		}
	}
	for _, n := range opts.Names {
		if !slices.ContainsFunc(all, func(g sgroup) bool { return g.name == n }) {
			return nil, fmt.Errorf("no security group with GroupName %q in the input", n)
		}
	}
	var out []sgroup
	for _, g := range all {
		if g.id != "" && slices.Contains(opts.GroupIDs, g.id) || g.name != "" && slices.Contains(opts.Names, g.name) {
			out = append(out, g)
		}
	}
	return out, nil
}

type importer struct {
	opts  ImportOptions
	warns []string
	// lists are the prefix lists the rules use, in the order first used.
	lists []string
	// refs maps the GroupId and GroupName of each imported security
	// group to its name in the rules file, for group references.
	refs map[string]string
}

// outGroup is one group ready to write.
type outGroup struct {
	name, description string
	comments          []string
	ingress, egress   []rules.Rule
	egressOmitted     bool
}

// the words the rules file writes for the two halves of any.
const (
	all4 = "0.0.0.0/0"
	all6 = "::/0"
)

func (im *importer) group(g sgroup, name string) (outGroup, error) {
	og := outGroup{name: name}
	if err := rules.CheckText("group description", g.description); err != nil {
		return og, &PathError{Path: g.path + ".Description", Msg: err.Error()}
	}
	og.description = g.description
	label := g.id
	if label == "" {
		label = g.name
	}
	c := label
	if g.vpc != "" {
		c += " in " + g.vpc
	}
	og.comments = append(og.comments, c)
	before := len(im.warns)
	var err error
	if og.ingress, err = im.rules(label, direction.Ingress, g.ingress); err != nil {
		return og, err
	}
	if og.egress, err = im.rules(label, direction.Egress, g.egress); err != nil {
		return og, err
	}
	for _, w := range im.warns[before:] {
		og.comments = append(og.comments, "note: "+w)
	}
	// AWS's default egress rule, exactly: our "egress omitted".
	if len(og.egress) == 1 {
		r := og.egress[0]
		if r.Proto.All && r.Description == "" && slices.Equal(r.Peers, []string{"any"}) {
			og.egress, og.egressOmitted = nil, true
		}
	}
	return og, nil
}

// uniqueName is the group's name in the rules file: its GroupName (or
// GroupId), made valid text and unique.
func uniqueName(g sgroup, taken map[string]bool) string {
	name := strings.TrimSpace(printable(g.name))
	if name == "" {
		name = strings.TrimSpace(printable(g.id))
	}
	if name == "" {
		name = "imported"
	}
	if utf8.RuneCountInString(name) > rules.MaxTextLen {
		name = string([]rune(name)[:rules.MaxTextLen])
	}
	if !taken[name] {
		return name
	}
	suffix := func(sfx string) string {
		base := []rune(name)
		return string(base[:min(len(base), rules.MaxTextLen-utf8.RuneCountInString(sfx))]) + sfx
	}
	if g.id != "" && name != g.id {
		if n := suffix("-" + g.id); !taken[n] {
			return n
		}
	}
	for i := 2; ; i++ {
		if n := suffix("-" + strconv.Itoa(i)); !taken[n] {
			return n
		}
	}
}

// printable drops from s the characters rules.CheckText refuses
// (controls, line breaks, invisible formatting), so that s can be a group
// name or a comment line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || rules.CheckText("text", string(r)) != nil {
			return -1
		}
		return r
	}, s)
}

// rules converts one direction's permissions. Peers of rules with the
// same protocol, ports, ICMP type and description are merged into one
// rule, then the ports of rules with the same protocol, peers and
// description, so that AWS's one-permission-per-port-range reads like a
// hand-written file.
func (im *importer) rules(label string, dir direction.Dir, perms []permission) ([]rules.Rule, error) {
	var out []rules.Rule
	warn := func(r rules.Rule, why string) {
		im.warns = append(im.warns, fmt.Sprintf("%s %s %s: %s", label, dir.Key(), r.Format(dir), why))
	}
	for _, p := range perms {
		base, skip, err := convertPorts(p)
		if err != nil {
			return nil, err
		}
		var keep []rules.Rule
		all := base
		for _, pe := range p.peers {
			if err := rules.CheckText("description", pe.description); err != nil {
				return nil, &PathError{Path: pe.descAt, Msg: err.Error()}
			}
			word, hostBits, why, err := im.peerWord(pe)
			if err != nil {
				return nil, err
			}
			all.Peers = append(all.Peers, pe.value)
			r := base
			r.Peers = []string{pe.value}
			switch {
			case skip != "":
			case why != "":
				warn(r, why+": left out")
			default:
				if hostBits {
					warn(r, fmt.Sprintf("CIDR %s has host bits set: using %s", pe.value, word))
				}
				r.Peers, r.Description = []string{word}, pe.description
				keep = append(keep, r)
			}
		}
		if skip != "" {
			warn(all, skip+": left out")
			continue
		}
		for _, r := range keep {
			out = addPeer(out, r)
		}
	}
	for i := range out {
		out[i].Peers = anyPeers(out[i].Peers)
	}
	return mergePorts(out), nil
}

// convertPorts reads a permission's protocol, ports and ICMP type into a
// rule without peers. skip, when not empty, says why the permission has
// no meaning here.
func convertPorts(p permission) (r rules.Rule, skip string, err error) {
	r.Proto, err = rules.ParseProto(p.proto)
	if err != nil {
		return r, "", &PathError{Path: p.protoAt, Msg: err.Error()}
	}
	anyNum := func(n *int) bool { return n == nil || *n == -1 }
	switch {
	case r.Proto.HasPorts():
		if anyNum(p.from) {
			if !anyNum(p.to) {
				return r, "", &PathError{Path: p.toAt, Msg: fmt.Sprintf("ToPort %d without a FromPort: expected both, or -1 for all ports", *p.to)}
			}
			return r, "", nil
		}
		lo, err := portNum(*p.from, p.fromAt)
		if err != nil {
			return r, "", err
		}
		hi := lo
		if p.to != nil {
			if hi, err = portNum(*p.to, p.toAt); err != nil {
				return r, "", err
			}
		}
		if hi < lo {
			return r, "", &PathError{Path: p.toAt, Msg: fmt.Sprintf("port range %d-%d is inverted: expected FromPort <= ToPort", lo, hi)}
		}
		switch {
		case lo == 0 && hi == 65535:
			return r, "", nil
		case hi == 0:
			r.Ports = []rules.PortRange{{Lo: 0, Hi: 0}}
			return r, "port 0 is no service", nil
		case lo == 0:
			lo = 1 // port 0 is no service; the rules file refuses it
		}
		r.Ports = []rules.PortRange{{Lo: uint16(lo), Hi: uint16(hi)}}
	case r.Proto.IsICMP():
		if anyNum(p.from) {
			if !anyNum(p.to) {
				return r, "", &PathError{Path: p.toAt, Msg: fmt.Sprintf("ICMP code %d with every ICMP type (FromPort -1): expected ToPort -1", *p.to)}
			}
			return r, "", nil
		}
		if *p.from < 0 || *p.from > 255 {
			return r, "", &PathError{Path: p.fromAt, Msg: fmt.Sprintf("ICMP type %d out of range: expected 0-255 or -1 for every type", *p.from)}
		}
		r.ICMP = &rules.ICMP{Type: uint8(*p.from), AnyCode: true}
		if !anyNum(p.to) {
			if *p.to < 0 || *p.to > 255 {
				return r, "", &PathError{Path: p.toAt, Msg: fmt.Sprintf("ICMP code %d out of range: expected 0-255 or -1 for every code", *p.to)}
			}
			r.ICMP.Code, r.ICMP.AnyCode = uint8(*p.to), false
		}
	}
	// Other protocols (and -1) have no ports: AWS ignores FromPort and ToPort.
	return r, "", nil
}

func portNum(n int, path string) (int, error) {
	if n < 0 || n > 65535 {
		return 0, &PathError{Path: path, Msg: fmt.Sprintf("port %d out of range: expected 0-65535, or -1 for all ports", n)}
	}
	return n, nil
}

// refName is a group name a group reference can write bare.
var refName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// peerWord is how the rules file writes a peer. why, when not empty,
// says why the peer has no meaning on one host.
func (im *importer) peerWord(pe peer) (word string, hostBits bool, why string, err error) {
	switch pe.kind {
	case peerGroup:
		name, ok := im.refs[pe.value]
		if !ok {
			return "", false, "security group " + pe.value + " is not among those imported (import it too, and the reference becomes group:NAME)", nil
		}
		if !refName.MatchString(name) {
			return "", false, fmt.Sprintf("security group %s is imported as %q, a name a group reference cannot write (letters, digits, '.', '_', '-')", pe.value, name), nil
		}
		return rules.GroupRefPrefix + name, false, "", nil
	case peerPrefixList:
		if _, ok := im.opts.PrefixLists[pe.value]; !ok {
			return "", false, "managed prefix list " + pe.value + " is not known here (give its CIDRs with --prefix-list " + pe.value + "=CIDR,...)", nil
		}
		if !slices.Contains(im.lists, pe.value) {
			im.lists = append(im.lists, pe.value)
		}
		return pe.value, false, "", nil
	}
	pfx, hostBits, err := rules.ParsePrefix(pe.value)
	if err != nil {
		return "", false, "", &PathError{Path: pe.path, Msg: err.Error()}
	}
	if !strings.Contains(pe.value, "/") {
		return "", false, "", &PathError{Path: pe.path, Msg: fmt.Sprintf("%q is an address: expected a CIDR such as %s", clip(pe.value), pfx)}
	}
	if want := pe.kind == peerCIDR6; pfx.Addr().Is6() != want {
		fam := "an IPv4"
		if want {
			fam = "an IPv6"
		}
		return "", false, "", &PathError{Path: pe.path, Msg: fmt.Sprintf("%q: expected %s CIDR", clip(pe.value), fam)}
	}
	return pfx.String(), hostBits, "", nil
}

// addPeer adds r (one peer) to the rule of the same protocol, ports,
// ICMP type and description, or appends it.
func addPeer(out []rules.Rule, r rules.Rule) []rules.Rule {
	for i := range out {
		o := &out[i]
		if o.Proto == r.Proto && slices.Equal(o.Ports, r.Ports) && equalICMP(o.ICMP, r.ICMP) && o.Description == r.Description {
			if !slices.Contains(o.Peers, r.Peers[0]) {
				o.Peers = append(o.Peers, r.Peers[0])
			}
			return out
		}
	}
	return append(out, r)
}

// anyPeers writes 0.0.0.0/0 and ::/0 together as any.
func anyPeers(peers []string) []string {
	i4, i6 := slices.Index(peers, all4), slices.Index(peers, all6)
	if i4 < 0 || i6 < 0 {
		return peers
	}
	out := make([]string, 0, len(peers)-1)
	for i, p := range peers {
		switch i {
		case min(i4, i6):
			out = append(out, "any")
		case max(i4, i6):
		default:
			out = append(out, p)
		}
	}
	return out
}

// mergePorts joins rules with ports that differ only in their ports.
func mergePorts(in []rules.Rule) []rules.Rule {
	var out []rules.Rule
next:
	for _, r := range in {
		if len(r.Ports) > 0 {
			for i := range out {
				o := &out[i]
				if o.Proto == r.Proto && len(o.Ports) > 0 && slices.Equal(o.Peers, r.Peers) && o.Description == r.Description {
					for _, p := range r.Ports {
						if !slices.Contains(o.Ports, p) {
							o.Ports = append(o.Ports, p)
						}
					}
					continue next
				}
			}
		}
		out = append(out, r)
	}
	return out
}

func equalICMP(a, b *rules.ICMP) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// write renders the rules file.
func (im *importer) write(src Source, groups []outGroup) []byte {
	var b strings.Builder
	from := src.String() + " output"
	if im.opts.Name != "" {
		from = im.opts.Name + " (" + from + ")"
	}
	fmt.Fprintf(&b, "# Imported by fwctl import aws from %s.\n", from)
	b.WriteString("# Security-group semantics: allow-only, the union of all rules decides.\n")
	b.WriteString("version: 1\n")
	if len(im.lists) > 0 {
		b.WriteString("prefix_lists:\n")
		for _, id := range im.lists {
			ps := make([]string, 0, len(im.opts.PrefixLists[id]))
			for _, p := range im.opts.PrefixLists[id] {
				ps = append(ps, p.String())
			}
			fmt.Fprintf(&b, "  %s: [%s]\n", id, strings.Join(ps, ", "))
		}
	}
	b.WriteString("groups:\n")
	for _, g := range groups {
		for _, c := range g.comments {
			fmt.Fprintf(&b, "  # %s\n", printable(c))
		}
		fmt.Fprintf(&b, "  - name: %s\n", scalar(g.name))
		if g.description != "" {
			fmt.Fprintf(&b, "    description: %s\n", scalar(g.description))
		}
		writeRules(&b, direction.Ingress, g.ingress)
		if g.egressOmitted {
			b.WriteString("    # egress omitted: all outbound traffic is allowed (AWS's default rule).\n")
		} else {
			writeRules(&b, direction.Egress, g.egress)
		}
	}
	return []byte(b.String())
}

func writeRules(b *strings.Builder, dir direction.Dir, rs []rules.Rule) {
	if len(rs) == 0 {
		fmt.Fprintf(b, "    %s: []\n", dir.Key())
		return
	}
	fmt.Fprintf(b, "    %s:\n", dir.Key())
	for i := range rs {
		fmt.Fprintf(b, "      - %s\n", rules.FormatRule(&rs[i], dir))
	}
}

// scalar writes s as a YAML string, quoted when it must be.
func scalar(s string) string {
	out, err := yaml.Marshal(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
	if err != nil {
		return strconv.Quote(s)
	}
	return strings.TrimSpace(string(out))
}
