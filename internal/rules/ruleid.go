package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/types/direction"
)

// A rule's ID is its one name, the way AWS names a security-group rule
// sgr-…: "sgr-" and the first 12 hex digits of a sha256 over the rule's
// group name, its direction and its traffic in canonical form (protocol,
// ports sorted and merged, ICMP type and code, peer prefixes resolved,
// sorted and deduplicated: what SameTraffic compares). The description,
// the way the rule is written (port order, "any" or 0.0.0.0/0 and ::/0,
// a prefix list or its CIDRs) and the rule's place in the file do not
// count. So a rule keeps its ID when other rules are added, removed or
// reordered, when groups are reordered, when its description changes,
// and across reloads and restarts; it gets a new one when what it allows
// changes (including the CIDRs of a prefix list it names) or it moves to
// another group or direction.
//
// Two rules of one group and direction with the same traffic would have
// the same ID. Edits never make such a pair, but a file written by hand
// may hold one: the first in file order gets the plain ID, the second
// the ID with "-2", the third "-3" and so on. The suffix is the one part
// of an ID that depends on order: delete the first and the second takes
// its plain ID.

// IDPrefix starts every rule ID.
const IDPrefix = "sgr-"

// idHexLen is how many hex digits of the hash an ID keeps.
const idHexLen = 12

// IsRuleID reports whether s is spelled as a rule ID: "sgr-", 12
// lower-case hex digits and maybe "-N" with N from 2. It says nothing of
// whether a file has such a rule.
func IsRuleID(s string) bool {
	rest, ok := strings.CutPrefix(s, IDPrefix)
	if !ok || len(rest) < idHexLen {
		return false
	}
	for _, c := range rest[:idHexLen] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	rest = rest[idHexLen:]
	if rest == "" {
		return true
	}
	n, ok := strings.CutPrefix(rest, "-")
	if !ok || n == "" || n[0] == '0' {
		return false
	}
	k, err := strconv.Atoi(n)
	return err == nil && k >= 2
}

// RuleID returns the ID of the rule ref names, or "" when there is none.
func (f *File) RuleID(ref RuleRef) string {
	if r := f.RuleAt(ref); r != nil {
		return r.ID
	}
	return ""
}

// RuleByID finds the rule with the given ID.
func (f *File) RuleByID(id string) (RuleRef, bool) {
	if id == "" {
		return RuleRef{}, false
	}
	for _, ref := range f.Numbered() {
		if f.RuleAt(ref).ID == id {
			return ref, true
		}
	}
	return RuleRef{}, false
}

// assignIDs fills the ID of every rule of f, in file order, so that a
// repeated ID gets its "-N".
func (f *File) assignIDs() {
	seen := make(map[string]int, f.NumRules())
	var buf []byte
	for _, ref := range f.Numbered() {
		r := f.RuleAt(ref)
		var id string
		id, buf = appendBaseID(buf[:0], f.Groups[ref.Group].Name, ref.Dir, r)
		seen[id]++
		if n := seen[id]; n > 1 {
			id += "-" + strconv.Itoa(n)
		}
		r.ID = id
	}
}

// appendBaseID returns a rule's ID before any "-N" (see the comment at
// the top), with the text it hashes built in buf (returned for the next
// call to reuse): it runs for every rule of every file loaded.
func appendBaseID(buf []byte, group string, d direction.Dir, r *Rule) (string, []byte) {
	b := buf
	// The group name is the one free text: its length goes first, so no
	// name can run into the fields after it.
	b = append(b, "fwd rule id 1\n"...)
	b = strconv.AppendInt(b, int64(len(group)), 10)
	b = append(b, ':')
	b = append(b, group...)
	b = append(b, "\ndir "...)
	b = append(b, d.Key()...)
	b = append(b, "\nproto "...)
	if r.Proto.All {
		b = append(b, "all"...)
	} else {
		b = strconv.AppendInt(b, int64(r.Proto.Num), 10)
	}
	b = append(b, "\nports"...)
	b = appendPorts(b, r.Ports)
	b = append(b, "\nicmp"...)
	if r.ICMP != nil {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(r.ICMP.Type), 10)
		if !r.ICMP.AnyCode {
			b = append(b, '/')
			b = strconv.AppendInt(b, int64(r.ICMP.Code), 10)
		}
	}
	b = append(b, "\npeers"...)
	ps := r.Prefixes
	if len(ps) > 1 {
		ps = sortedPrefixes(ps)
	}
	for _, p := range ps {
		b = append(b, ' ')
		b = p.AppendTo(b)
	}
	b = append(b, '\n')
	sum := sha256.Sum256(b)
	var id [len(IDPrefix) + idHexLen]byte
	copy(id[:], IDPrefix)
	hex.Encode(id[len(IDPrefix):], sum[:idHexLen/2])
	return string(id[:]), b
}

// appendPorts appends the ports as normPorts has them, " lo-hi" each.
func appendPorts(b []byte, ps []PortRange) []byte {
	if len(ps) > 1 {
		ps = normPorts(ps)
	} else if len(ps) == 0 {
		ps = []PortRange{{0, 65535}}
	}
	for _, p := range ps {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(p.Lo), 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(p.Hi), 10)
	}
	return b
}

// sortedPrefixes is a sorted, deduplicated copy of ps.
func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	s := slices.Clone(ps)
	slices.SortFunc(s, func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	})
	return slices.Compact(s)
}
