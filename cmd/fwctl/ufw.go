package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// This file reads rules in ufw's grammar:
//
//	allow [in|out] PORT[/PROTO] [comment TEXT]
//	allow [in|out] SERVICE[/PROTO] [comment TEXT]
//	allow [in|out] [proto PROTO [type TYPE[/CODE]]] [from ADDR] [to ADDR] [port PORT] [comment TEXT]
//
// PORT is N, N:M or N-M, or a comma list of those (up to 15 ports, a
// range counting as two, as iptables multiport and ufw allow); a list
// needs a protocol. Without a protocol a port means tcp and udp, and no
// port and no protocol means every protocol. For incoming rules the peer
// is "from" and "to" must be any (a security group matches the peer's
// address, not the host's); for outgoing rules the peer is "to".

// maxListPorts is ufw's (and iptables multiport's) limit on a port list.
const maxListPorts = 15

// ruleError is a rule the command line got wrong; code is its exit code.
type ruleError struct {
	code int
	msg  string
}

func (e *ruleError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &ruleError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

func rejectErr(format string, args ...any) error {
	return &ruleError{code: exitRejected, msg: fmt.Sprintf(format, args...)}
}

// portSpec is the port part of a rule: ports (nil: all) and the protocols
// they are for (nil: not said).
type portSpec struct {
	ports  []string
	protos []string
}

// parseRuleWords reads the words after "allow" (or "delete allow") into
// the rules they mean: one per protocol.
func parseRuleWords(words []string) ([]control.RuleSpec, error) {
	if len(words) == 0 {
		return nil, usageErr("missing rule: expected e.g. 443/tcp, ssh, or from ADDR to any port PORT proto PROTO")
	}
	dir := "in"
	switch words[0] {
	case "in", "out":
		dir = words[0]
		words = words[1:]
	}
	var comment string
	if i := slices.Index(words, "comment"); i >= 0 {
		if i+1 >= len(words) {
			return nil, usageErr("comment needs a text: comment 'TEXT'")
		}
		comment = strings.Join(words[i+1:], " ")
		if err := rules.CheckDescription(comment); err != nil {
			return nil, rejectErr("bad comment %q: %v", comment, err)
		}
		words = words[:i]
	}
	if len(words) == 0 {
		return nil, usageErr("missing rule: expected e.g. 443/tcp, ssh, or from ADDR to any port PORT proto PROTO")
	}
	var specs []control.RuleSpec
	var err error
	if isKeyword(words[0]) {
		specs, err = fullForm(dir, words)
	} else {
		if len(words) > 1 {
			return nil, usageErr("unexpected %q after %q: the short form is one PORT[/PROTO] or SERVICE", words[1], words[0])
		}
		specs, err = shortForm(dir, words[0])
	}
	if err != nil {
		return nil, err
	}
	for i := range specs {
		specs[i].Description = comment
	}
	return specs, nil
}

func isKeyword(w string) bool {
	switch w {
	case "proto", "from", "to", "port", "type", "icmp-type", "on":
		return true
	}
	return false
}

func shortForm(dir, word string) ([]control.RuleSpec, error) {
	ps, err := parsePortWord(word)
	if err != nil {
		return nil, err
	}
	return ps.specs(dir, []string{"any"}, nil), nil
}

func (ps portSpec) specs(dir string, peers []string, icmp *control.ICMPSpec) []control.RuleSpec {
	protos := ps.protos
	if len(protos) == 0 {
		protos = []string{"tcp", "udp"}
	}
	var out []control.RuleSpec
	for _, p := range protos {
		out = append(out, control.RuleSpec{Dir: dir, Proto: p, Ports: ps.ports, Peers: peers, ICMP: icmp})
	}
	return out
}

// parsePortWord reads PORT[/PROTO] or SERVICE[/PROTO].
func parsePortWord(word string) (portSpec, error) {
	ports, proto, hasProto := strings.Cut(word, "/")
	var ps portSpec
	if hasProto {
		p, err := rules.ParseProto(proto)
		if err != nil {
			return ps, rejectErr("bad protocol %q in %q: expected tcp or udp", proto, word)
		}
		if !p.HasPorts() {
			return ps, rejectErr("bad protocol %q in %q: only tcp and udp have ports", proto, word)
		}
		ps.protos = []string{p.String()}
	}
	if ports == "" {
		return ps, rejectErr("bad port %q: expected a port, a range N:M or a service name", word)
	}
	if !isPortText(ports) {
		// A service name from /etc/services.
		if strings.Contains(ports, ",") {
			return ps, rejectErr("bad port %q: a port list holds numbers and ranges, not service names", word)
		}
		svc := lookupService(ports)
		if len(svc) == 0 {
			return ps, rejectErr("unknown service %q: not in /etc/services (give a port number, e.g. 8080/tcp)", ports)
		}
		var protos []string
		for _, s := range svc {
			if ps.protos == nil || slices.Contains(ps.protos, s.proto) {
				if len(ps.ports) == 0 {
					ps.ports = []string{strconv.Itoa(s.port)}
				}
				if strconv.Itoa(s.port) == ps.ports[0] && !slices.Contains(protos, s.proto) {
					protos = append(protos, s.proto)
				}
			}
		}
		if len(protos) == 0 {
			return ps, rejectErr("unknown service %q: /etc/services has no %s port for it", ports, ps.protos[0])
		}
		ps.protos = protos
		return ps, nil
	}
	list, err := parsePortList(ports, word)
	if err != nil {
		return ps, err
	}
	if strings.Contains(ports, ",") && !hasProto {
		return ps, rejectErr("port list %q without a protocol: write %s/tcp or %s/udp", word, ports, ports)
	}
	if len(list) == 1 && strings.Contains(list[0], "-") && !hasProto {
		return ps, usageErr("port range %q without a protocol: ufw takes a range with one; write %s/tcp or %s/udp", word, ports, ports)
	}
	ps.ports = list
	return ps, nil
}

func isPortText(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == ',' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// parsePortList reads N, N:M, N-M and comma lists of those.
func parsePortList(s, word string) ([]string, error) {
	items := strings.Split(s, ",")
	count := 0
	var out []string
	for _, it := range items {
		if it == "" {
			return nil, rejectErr("bad port %q: empty item in the list", word)
		}
		lo, hi, isRange := strings.Cut(it, ":")
		if !isRange {
			lo, hi, isRange = strings.Cut(it, "-")
		}
		a, err := portNum(lo, word)
		if err != nil {
			return nil, err
		}
		if a == 0 {
			// The rules' own wording, from the one port reader.
			_, err := rules.ParsePortRange(it)
			return nil, usageErr("%v", err)
		}
		if !isRange {
			out = append(out, strconv.Itoa(a))
			count++
			continue
		}
		b, err := portNum(hi, word)
		if err != nil {
			return nil, err
		}
		if b < a {
			return nil, rejectErr("reversed port range %q: the low port comes first (%d:%d)", it, b, a)
		}
		if a == b {
			out = append(out, strconv.Itoa(a))
		} else {
			out = append(out, fmt.Sprintf("%d-%d", a, b))
		}
		count += 2
	}
	if count > maxListPorts {
		return nil, rejectErr("too many ports in %q: at most %d in a list, a range counting as 2", word, maxListPorts)
	}
	return out, nil
}

// shortWords is the short form of a rule for port p: "25", "out 25".
func shortWords(dir, p string) string {
	return outWord(dir) + p
}

// outWord is "out " for an outgoing rule, "" for an incoming one.
func outWord(dir string) string {
	if dir == "out" {
		return "out "
	}
	return ""
}

func portNum(s, word string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || s == "" || s[0] == '+' {
		return 0, rejectErr("bad port %q in %q: expected 0-65535", s, word)
	}
	return n, nil
}

// fullForm reads proto/from/to/port/type clauses.
func fullForm(dir string, words []string) ([]control.RuleSpec, error) {
	c, err := readClauses(dir, words)
	if err != nil {
		return nil, err
	}
	peers, peerFamily, err := c.peers(dir)
	if err != nil {
		return nil, err
	}
	p, icmp, err := c.protocol(dir, peerFamily)
	if err != nil {
		return nil, err
	}
	if c.port == "" {
		if c.proto == "" {
			return []control.RuleSpec{{Dir: dir, Proto: "all", Peers: peers}}, nil
		}
		return []control.RuleSpec{{Dir: dir, Proto: p.String(), Peers: peers, ICMP: icmp}}, nil
	}
	if strings.Contains(c.port, "/") {
		return nil, rejectErr("bad port %q: give the protocol with \"proto\", not after the port", c.port)
	}
	word := c.port
	if c.proto != "" {
		if !p.HasPorts() {
			return nil, rejectErr("\"port %s\" with proto %s: only tcp and udp have ports", c.port, p)
		}
		word = c.port + "/" + p.String()
	}
	ps, err := parsePortWord(word)
	if err != nil {
		return nil, err
	}
	return ps.specs(dir, peers, nil), nil
}

// clauses are the values of a full-form rule's clauses, as written.
type clauses struct {
	proto, from, to, port, icmpType string
}

// readClauses reads the proto, from, to, port and type clauses, each at
// most once; a port belongs to a "to ADDR" before it, as in ufw.
func readClauses(dir string, words []string) (clauses, error) {
	var c clauses
	seen := map[string]bool{}
	lastAddr := "" // the address clause a "port" belongs to
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !isKeyword(w) {
			return c, usageErr("unexpected %q: expected proto, from, to, port, type or comment", w)
		}
		if w == "on" {
			return c, usageErr("%q: \"on IFACE\" comes right after in or out (allow in on eth1 to any port 5432 proto tcp)", strings.Join(words[i:min(i+2, len(words))], " "))
		}
		key := w
		if key == "icmp-type" {
			key = "type"
		}
		if seen[key] {
			return c, usageErr("%q given twice", w)
		}
		seen[key] = true
		if i+1 >= len(words) {
			return c, usageErr("%q needs a value", w)
		}
		i++
		v := words[i]
		switch key {
		case "proto":
			c.proto = v
		case "from":
			c.from, lastAddr = v, "from"
		case "to":
			c.to, lastAddr = v, "to"
		case "port":
			if lastAddr == "" {
				return c, usageErr("%q without \"to ADDR\" before it is not ufw's grammar: write \"allow %s\" or \"allow %sto any port %s\"", "port "+v, shortWords(dir, v), outWord(dir), v)
			}
			if lastAddr == "from" {
				return c, rejectErr("\"from %s port %s\": a security group never matches the source port; write \"to any port %s\"", c.from, v, v)
			}
			c.port = v
		case "type":
			c.icmpType = v
		}
	}
	return c, nil
}

// sides returns the host's and the peer's address clauses and their
// words: the peer is from for in, to for out.
func (c clauses) sides(dir string) (host, peer, hostWord, peerWord string) {
	if dir == "out" {
		return c.from, c.to, "from", "to"
	}
	return c.to, c.from, "to", "from"
}

// peers returns the rule's peers and their address family ("" for any
// or a prefix list). The host's side must be any, or a /0 that narrows
// the peers to its family ("to 192.168.0.0/0" is "to any" IPv4, as in
// ufw).
func (c clauses) peers(dir string) ([]string, string, error) {
	host, peer, hostWord, peerWord := c.sides(dir)
	var peerFamily string
	if peer != "" && peer != "any" {
		fam, _, err := addrFamily(peer)
		if err != nil {
			return nil, "", err
		}
		peerFamily = fam
	}
	peers := []string{"any"}
	if peer != "" {
		peers = []string{canonicalMask(peer)}
	}
	if host == "" || host == "any" {
		return peers, peerFamily, nil
	}
	fam, whole, err := addrFamily(host)
	if err != nil {
		return nil, "", err
	}
	if peerFamily != "" && fam != "" && fam != peerFamily {
		fromFam, _, _ := addrFamily(c.from)
		toFam, _, _ := addrFamily(c.to)
		return nil, "", rejectErr("mixed IP versions: from %s is %s, to %s is %s", c.from, fromFam, c.to, toFam)
	}
	if !whole {
		return nil, "", rejectErr("\"%s %s\": a security group matches only the peer's address (%s); write \"%s any\"", hostWord, host, peerWord, hostWord)
	}
	if peer == "" || peer == "any" {
		peers, peerFamily = []string{"any4"}, fam
		if fam == "IPv6" {
			peers = []string{"any6"}
		}
	}
	return peers, peerFamily, nil
}

// protocol reads the proto and type clauses, checking that an ICMP
// protocol fits the peer's address family.
func (c clauses) protocol(dir, peerFamily string) (rules.Proto, *control.ICMPSpec, error) {
	var p rules.Proto
	if c.proto != "" {
		var err error
		if p, err = rules.ParseProto(c.proto); err != nil {
			return p, nil, rejectErr("bad protocol %q: expected tcp, udp, icmp, icmpv6, all or a number 0-255", c.proto)
		}
	}
	var icmp *control.ICMPSpec
	if c.icmpType != "" {
		if !p.IsICMP() {
			return p, nil, rejectErr("\"type %s\": an ICMP type needs proto icmp or proto icmpv6", c.icmpType)
		}
		var err error
		if icmp, err = parseICMPType(c.icmpType, p.Num == ipproto.ICMPv6); err != nil {
			return p, nil, err
		}
	}
	if p.IsICMP() && peerFamily != "" {
		if v6 := p.Num == ipproto.ICMPv6; v6 != (peerFamily == "IPv6") {
			other := "icmpv6"
			if v6 {
				other = "icmp"
			}
			_, peer, _, peerWord := c.sides(dir)
			return p, nil, rejectErr("mixed IP versions: proto %s with %s %s (%s); use proto %s", p, peerWord, peer, peerFamily, other)
		}
	}
	return p, icmp, nil
}

// addrFamily checks an address the way the rules file reads it (with
// rules.ParsePrefix) and says which family it is; prefix-list names and
// group references (group:web) have none (""). whole reports a /0, every address of the family.
func addrFamily(s string) (family string, whole bool, err error) {
	if s == "any4" {
		return "IPv4", true, nil
	}
	if s == "any6" {
		return "IPv6", true, nil
	}
	if _, ok := rules.GroupRef(s); ok {
		return "", false, nil // a group's members: the daemon checks the name
	}
	if !strings.ContainsAny(s, "./:") {
		return "", false, nil // a prefix-list name: the daemon checks it
	}
	p, _, err := rules.ParsePrefix(s)
	if err != nil {
		return "", false, rejectErr("%v", err)
	}
	if p.Addr().Is4() {
		return "IPv4", p.Bits() == 0, nil
	}
	return "IPv6", p.Bits() == 0, nil
}

// canonicalMask writes an address with a dotted netmask as the prefix it
// is, as ufw does (10.0.0.0/255.255.255.0 is 10.0.0.0/24); other peers
// stay as written.
func canonicalMask(s string) string {
	if _, mask, ok := strings.Cut(s, "/"); !ok || !strings.Contains(mask, ".") {
		return s
	}
	p, hostBits, err := rules.ParsePrefix(s)
	if err != nil || hostBits {
		return s // the daemon says what is wrong, or warns of the host bits
	}
	return p.String()
}

// icmpNames are the ICMP and ICMPv6 message names fwctl knows: name ->
// type, code (-1: every code).
var icmpNames = map[string][2]int{
	"echo-reply":              {0, -1},
	"destination-unreachable": {3, -1},
	"fragmentation-needed":    {3, 4},
	"redirect":                {5, -1},
	"echo-request":            {8, -1},
	"time-exceeded":           {11, -1},
	"parameter-problem":       {12, -1},
	"timestamp-request":       {13, -1},
}

var icmpv6Names = map[string][2]int{
	"destination-unreachable": {1, -1},
	"packet-too-big":          {2, -1},
	"time-exceeded":           {3, -1},
	"parameter-problem":       {4, -1},
	"echo-request":            {128, -1},
	"echo-reply":              {129, -1},
	"router-solicitation":     {133, -1},
	"router-advertisement":    {134, -1},
	"neighbor-solicitation":   {135, -1},
	"neighbor-advertisement":  {136, -1},
}

// parseICMPType reads TYPE[/CODE], TYPE a number or a name.
func parseICMPType(s string, v6 bool) (*control.ICMPSpec, error) {
	names := icmpNames
	if v6 {
		names = icmpv6Names
	}
	if tc, ok := names[strings.ToLower(s)]; ok {
		spec := &control.ICMPSpec{Type: tc[0]}
		if tc[1] >= 0 {
			c := tc[1]
			spec.Code = &c
		}
		return spec, nil
	}
	t, c, hasCode := strings.Cut(s, "/")
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > 255 {
		known := make([]string, 0, len(names))
		for k := range names {
			known = append(known, k)
		}
		slices.Sort(known)
		return nil, rejectErr("bad icmp type %q: expected 0-255[/CODE] or one of %s", s, strings.Join(known, ", "))
	}
	spec := &control.ICMPSpec{Type: n}
	if hasCode {
		m, err := strconv.Atoi(c)
		if err != nil || m < 0 || m > 255 {
			return nil, rejectErr("bad icmp code %q in %q: expected 0-255", c, s)
		}
		spec.Code = &m
	}
	return spec, nil
}

type service struct {
	port  int
	proto string
}

// builtinServices answers when /etc/services is missing.
var builtinServices = map[string][]service{
	"ssh":    {{22, "tcp"}},
	"domain": {{53, "tcp"}, {53, "udp"}},
	"http":   {{80, "tcp"}},
	"www":    {{80, "tcp"}},
	"https":  {{443, "tcp"}, {443, "udp"}},
	"ntp":    {{123, "udp"}},
	"smtp":   {{25, "tcp"}},
	"imaps":  {{993, "tcp"}},
}

// lookupService finds a service name's ports in /etc/services (or the
// built-in table when that file is missing).
func lookupService(name string) []service {
	f, err := os.Open("/etc/services")
	if err != nil {
		return builtinServices[name]
	}
	defer f.Close()
	var out []service
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 || !slices.Contains(append([]string{fields[0]}, fields[2:]...), name) {
			continue
		}
		port, proto, ok := strings.Cut(fields[1], "/")
		n, err := strconv.Atoi(port)
		if !ok || err != nil || (proto != "tcp" && proto != "udp") {
			continue
		}
		out = append(out, service{n, proto})
	}
	return out
}
