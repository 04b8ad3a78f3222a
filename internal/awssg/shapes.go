// Package awssg converts between AWS EC2 security groups, as the AWS CLI
// prints and takes them, and fwd's version 1 rules file.
//
// Import reads the output of `aws ec2 describe-security-groups` (groups
// with nested IpPermissions and IpPermissionsEgress) or of `aws ec2
// describe-security-group-rules` (a flat list of rules with IsEgress) and
// writes a rules file that `fwctl validate` accepts. What has no meaning
// on one host (a reference to another security group, a managed prefix
// list it was not told the CIDRs of) is left out with a warning naming
// the rule; malformed input is a *PathError naming the JSON path, such as
// SecurityGroups[0].IpPermissions[2].FromPort, or a *SyntaxError naming
// the line and column.
//
// Export writes the reverse: for each group the IpPermissions and
// IpPermissionsEgress arrays that `aws ec2 authorize-security-group-ingress
// --ip-permissions file://...` (and its egress twin) take, inside the
// describe-security-groups shape, so that Import reads Export's output
// back to the same rules.
//
// This file holds the AWS shapes: the JSON reader, which walks the
// decoded tree itself so that every error names its path, and the types
// Export marshals.
package awssg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// PathError is malformed input at one place of the JSON document.
type PathError struct {
	Path string // JMESPath-like: SecurityGroups[0].IpPermissions[2].FromPort; "top level" for the document
	Msg  string
}

func (e *PathError) Error() string { return e.Path + ": " + e.Msg }

// SyntaxError is input that is not JSON at all.
type SyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: not JSON: %s", e.Line, e.Col, e.Msg)
}

// Source says which AWS command printed the input.
type Source int

// The AWS commands Import reads the output of.
const (
	DescribeSecurityGroups     Source = iota // {"SecurityGroups": [...]}
	DescribeSecurityGroupRules               // {"SecurityGroupRules": [...]}
)

func (s Source) String() string {
	if s == DescribeSecurityGroupRules {
		return "describe-security-group-rules"
	}
	return "describe-security-groups"
}

// sgroup is one security group as read, before conversion.
type sgroup struct {
	path        string
	id, name    string
	description string
	vpc         string
	ingress     []permission
	egress      []permission
}

// permission is one IpPermission (or one flat rule): a protocol, maybe a
// port range or ICMP type and code, and the peers it allows.
type permission struct {
	path     string
	proto    string
	protoAt  string // path of IpProtocol
	from, to *int   // nil when absent
	fromAt   string
	toAt     string
	peers    []peer
}

type peerKind int

const (
	peerCIDR4 peerKind = iota
	peerCIDR6
	peerPrefixList
	peerGroup
)

// peer is one address range, prefix list or group reference of a
// permission, with its own description.
type peer struct {
	kind        peerKind
	value       string
	description string
	path        string // of the value
	descAt      string // of the description
}

// document is the input, read.
type document struct {
	source Source
	groups []sgroup
}

// maxInputBytes bounds what read decodes.
const maxInputBytes = 64 << 20

// read decodes the output of describe-security-groups or
// describe-security-group-rules.
func read(data []byte) (*document, error) {
	if len(data) > maxInputBytes {
		return nil, &PathError{Path: "top level", Msg: fmt.Sprintf("%d bytes: expected at most %d", len(data), maxInputBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, syntaxError(data, dec, err)
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		for end < len(data) && strings.IndexByte(" \t\r\n", data[end]) >= 0 {
			end++
		}
		line, col := lineCol(data, end)
		return nil, &SyntaxError{Line: line, Col: col, Msg: "more after the end of the document"}
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, &PathError{Path: "top level", Msg: "expected an object with SecurityGroups or SecurityGroupRules (the output of aws ec2 describe-security-groups or describe-security-group-rules), got " + shown(v)}
	}
	sgs, hasGroups := top["SecurityGroups"]
	sgrs, hasRules := top["SecurityGroupRules"]
	switch {
	case hasGroups && hasRules:
		return nil, &PathError{Path: "top level", Msg: "both SecurityGroups and SecurityGroupRules: expected the output of one command"}
	case hasGroups:
		groups, err := readGroups(sgs)
		return &document{source: DescribeSecurityGroups, groups: groups}, err
	case hasRules:
		groups, err := readFlatRules(sgrs)
		return &document{source: DescribeSecurityGroupRules, groups: groups}, err
	}
	return nil, &PathError{Path: "top level", Msg: "no SecurityGroups or SecurityGroupRules: expected the output of aws ec2 describe-security-groups or describe-security-group-rules"}
}

func syntaxError(data []byte, dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int(dec.InputOffset())
	msg := err.Error()
	switch {
	case errors.As(err, &se):
		off = int(se.Offset) - 1 // Offset counts the offending byte
	case errors.As(err, &te):
		off = int(te.Offset)
	case errors.Is(err, io.EOF):
		return &SyntaxError{Line: 1, Col: 1, Msg: "empty input"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "unexpected end of input"
		off = len(data)
	}
	line, col := lineCol(data, off)
	return &SyntaxError{Line: line, Col: col, Msg: msg}
}

// lineCol turns a byte offset into a 1-based line and column (in bytes).
func lineCol(data []byte, off int) (int, int) {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := off - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

func readGroups(v any) ([]sgroup, error) {
	items, err := array(v, "SecurityGroups")
	if err != nil {
		return nil, err
	}
	out := make([]sgroup, 0, len(items))
	for i, it := range items {
		path := fmt.Sprintf("SecurityGroups[%d]", i)
		m, err := object(it, path)
		if err != nil {
			return nil, err
		}
		g := sgroup{path: path}
		for _, f := range []struct {
			key string
			dst *string
		}{{"GroupId", &g.id}, {"GroupName", &g.name}, {"Description", &g.description}, {"VpcId", &g.vpc}} {
			if *f.dst, err = optString(m, f.key, path); err != nil {
				return nil, err
			}
		}
		if g.id == "" && g.name == "" {
			return nil, &PathError{Path: path, Msg: "a group without GroupId or GroupName: expected at least one"}
		}
		if g.ingress, err = readPermissions(m, "IpPermissions", path); err != nil {
			return nil, err
		}
		if g.egress, err = readPermissions(m, "IpPermissionsEgress", path); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

func readPermissions(m map[string]any, key, parent string) ([]permission, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, nil
	}
	items, err := array(v, parent+"."+key)
	if err != nil {
		return nil, err
	}
	out := make([]permission, 0, len(items))
	for i, it := range items {
		p, err := readPermission(it, fmt.Sprintf("%s.%s[%d]", parent, key, i))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// readPorts reads IpProtocol, FromPort and ToPort, which the nested and
// the flat shapes share.
func readPorts(m map[string]any, path string) (permission, error) {
	p := permission{path: path, protoAt: path + ".IpProtocol", fromAt: path + ".FromPort", toAt: path + ".ToPort"}
	v, ok := m["IpProtocol"]
	if !ok {
		return p, &PathError{Path: path, Msg: `no IpProtocol: expected "-1", "tcp", "udp", "icmp", "icmpv6" or a protocol number`}
	}
	switch v := v.(type) {
	case string:
		p.proto = v
	case json.Number: // not what AWS prints, but unambiguous
		p.proto = v.String()
	default:
		return p, &PathError{Path: p.protoAt, Msg: "expected a protocol name or number, got " + shown(v)}
	}
	var err error
	if p.from, err = optInt(m, "FromPort", path); err != nil {
		return p, err
	}
	p.to, err = optInt(m, "ToPort", path)
	return p, err
}

func readPermission(v any, path string) (permission, error) {
	m, err := object(v, path)
	if err != nil {
		return permission{}, err
	}
	p, err := readPorts(m, path)
	if err != nil {
		return p, err
	}
	lists := []struct {
		key, valueKey string
		kind          peerKind
	}{
		{"IpRanges", "CidrIp", peerCIDR4},
		{"Ipv6Ranges", "CidrIpv6", peerCIDR6},
		{"PrefixListIds", "PrefixListId", peerPrefixList},
		{"UserIdGroupPairs", "GroupId", peerGroup},
	}
	for _, l := range lists {
		lv, ok := m[l.key]
		if !ok || lv == nil {
			continue
		}
		items, err := array(lv, path+"."+l.key)
		if err != nil {
			return p, err
		}
		for i, it := range items {
			ipath := fmt.Sprintf("%s.%s[%d]", path, l.key, i)
			im, err := object(it, ipath)
			if err != nil {
				return p, err
			}
			pe := peer{kind: l.kind, path: ipath + "." + l.valueKey, descAt: ipath + ".Description"}
			if pe.value, err = optString(im, l.valueKey, ipath); err != nil {
				return p, err
			}
			if l.kind == peerGroup && pe.value == "" {
				// A pair may name the group only by name (default VPC, EC2-Classic).
				if pe.value, err = optString(im, "GroupName", ipath); err != nil {
					return p, err
				}
			}
			if pe.value == "" {
				return p, &PathError{Path: ipath, Msg: "no " + l.valueKey + ": expected one"}
			}
			if pe.description, err = optString(im, "Description", ipath); err != nil {
				return p, err
			}
			p.peers = append(p.peers, pe)
		}
	}
	return p, nil
}

// readFlatRules reads describe-security-group-rules' list, one group per
// GroupId in the order they first appear.
func readFlatRules(v any) ([]sgroup, error) {
	items, err := array(v, "SecurityGroupRules")
	if err != nil {
		return nil, err
	}
	var out []sgroup
	index := map[string]int{}
	for i, it := range items {
		path := fmt.Sprintf("SecurityGroupRules[%d]", i)
		m, err := object(it, path)
		if err != nil {
			return nil, err
		}
		id, err := optString(m, "GroupId", path)
		if err != nil {
			return nil, err
		}
		if id == "" {
			return nil, &PathError{Path: path, Msg: "no GroupId: expected the id of the rule's group"}
		}
		egress, err := reqBool(m, "IsEgress", path)
		if err != nil {
			return nil, err
		}
		p, err := readPorts(m, path)
		if err != nil {
			return nil, err
		}
		pe, err := flatPeer(m, path)
		if err != nil {
			return nil, err
		}
		p.peers = []peer{pe}
		gi, ok := index[id]
		if !ok {
			gi = len(out)
			index[id] = gi
			out = append(out, sgroup{path: path, id: id})
		}
		if egress {
			out[gi].egress = append(out[gi].egress, p)
		} else {
			out[gi].ingress = append(out[gi].ingress, p)
		}
	}
	return out, nil
}

// flatPeer reads the one peer of a flat rule.
func flatPeer(m map[string]any, path string) (peer, error) {
	pe := peer{descAt: path + ".Description"}
	var err error
	if pe.description, err = optString(m, "Description", path); err != nil {
		return pe, err
	}
	var found []string
	for _, c := range []struct {
		key  string
		kind peerKind
	}{{"CidrIpv4", peerCIDR4}, {"CidrIpv6", peerCIDR6}, {"PrefixListId", peerPrefixList}} {
		s, err := optString(m, c.key, path)
		if err != nil {
			return pe, err
		}
		if s != "" {
			found = append(found, c.key)
			pe.kind, pe.value, pe.path = c.kind, s, path+"."+c.key
		}
	}
	if rv, ok := m["ReferencedGroupInfo"]; ok && rv != nil {
		rpath := path + ".ReferencedGroupInfo"
		rm, err := object(rv, rpath)
		if err != nil {
			return pe, err
		}
		id, err := optString(rm, "GroupId", rpath)
		if err != nil {
			return pe, err
		}
		if id == "" {
			return pe, &PathError{Path: rpath, Msg: "no GroupId: expected the referenced group's id"}
		}
		found = append(found, "ReferencedGroupInfo")
		pe.kind, pe.value, pe.path = peerGroup, id, rpath+".GroupId"
	}
	switch len(found) {
	case 0:
		return pe, &PathError{Path: path, Msg: "no peer: expected one of CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupInfo"}
	case 1:
		return pe, nil
	}
	return pe, &PathError{Path: path, Msg: "several peers (" + strings.Join(found, ", ") + "): expected one of CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupInfo"}
}

func object(v any, path string) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &PathError{Path: path, Msg: "expected an object, got " + shown(v)}
	}
	return m, nil
}

func array(v any, path string) ([]any, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, &PathError{Path: path, Msg: "expected a list, got " + shown(v)}
	}
	return a, nil
}

// optString reads m[key]: "" when absent or null.
func optString(m map[string]any, key, parent string) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", &PathError{Path: parent + "." + key, Msg: "expected a string, got " + shown(v)}
	}
	return s, nil
}

// optInt reads m[key] as an integer: nil when absent or null.
func optInt(m map[string]any, key, parent string) (*int, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, nil
	}
	bad := &PathError{Path: parent + "." + key, Msg: "expected a number, got " + shown(v)}
	num, ok := v.(json.Number)
	if !ok {
		return nil, bad
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
		bad.Msg = "expected a whole number, got " + shown(v)
		return nil, bad
	}
	i := int(n)
	return &i, nil
}

func reqBool(m map[string]any, key, parent string) (bool, error) {
	v, ok := m[key]
	if !ok {
		return false, &PathError{Path: parent, Msg: "no " + key + ": expected true or false"}
	}
	b, ok := v.(bool)
	if !ok {
		return false, &PathError{Path: parent + "." + key, Msg: "expected true or false, got " + shown(v)}
	}
	return b, nil
}

// shown describes a JSON value in an error: strings quoted and clipped.
func shown(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(clip(v))
	case json.Number:
		return clip(v.String())
	case bool:
		return strconv.FormatBool(v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "..."
}
