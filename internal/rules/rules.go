// Package rules is what users write: the version 1 rules file of fwd
// (groups of allow-only ingress and egress rules, as in an AWS security
// group), decoded strictly from YAML and validated. Every error names
// file:line:column and what was expected; a file with any error yields no
// File at all, so a caller can never apply half of one.
//
// The compiled, immutable lookup table built from a File lives in package
// filter.
package rules

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// DefaultMaxRules bounds the number of rules (ingress and egress, all
// groups) in one file when Options.MaxRules is zero.
const DefaultMaxRules = 65536

// Options tune decoding.
type Options struct {
	// MaxRules is the largest number of rules a file may hold; zero means
	// DefaultMaxRules.
	MaxRules int
	// MaxFileBytes is the largest rules file Load and ReadFile read;
	// zero means DefaultMaxFileBytes.
	MaxFileBytes int64
}

func (o Options) maxRules() int {
	if o.MaxRules <= 0 {
		return DefaultMaxRules
	}
	return o.MaxRules
}

// File is a decoded, validated rules file.
type File struct {
	Path        string // as given to Load or Parse
	Hash        string // sha256 of the file's bytes, hex
	Version     int
	PrefixLists []PrefixList
	Groups      []Group
	// ACL is the optional network-ACL layer (the acl key); empty when
	// the file has none.
	ACL ACL
	// Failsafe is the optional failsafe key (failsafe: {ssh: true}).
	Failsafe Failsafe
	// GroupsResolved is true in a copy made by ResolveGroups: its rules'
	// Members hold what their group references stand for.
	GroupsResolved bool
	// Warnings are things that were accepted but are worth saying, such
	// as a CIDR with host bits set (canonicalized).
	Warnings []*Error
}

// NumRules is the number of ingress and egress rules over all groups.
func (f *File) NumRules() int {
	n := 0
	for i := range f.Groups {
		n += len(f.Groups[i].Ingress) + len(f.Groups[i].Egress)
	}
	return n
}

// PrefixList is a named list of CIDRs that rules refer to by name.
type PrefixList struct {
	Name     string
	Prefixes []netip.Prefix
	Pos      Pos
}

// Group is one security group.
type Group struct {
	Name        string
	Description string
	Ingress     []Rule
	Egress      []Rule
	// EgressOmitted is true when the group has no egress key at all, which
	// means allow all outbound (AWS's default egress rule). An explicit
	// "egress: []" means no outbound at all.
	EgressOmitted bool
	Pos           Pos
	// Interfaces are the interface names and patterns (eth1, eth*) the
	// group is attached to, as written; nil (the key omitted) means every
	// interface. See IfaceMatch.
	Interfaces []string
	IfacePos   Pos // of the interfaces key's value
	// Audit is true for a group in audit mode (mode: audit): the traffic
	// it decides is decided as usual, but what would be dropped is
	// accepted and counted as a would-drop (see rules/README.md).
	Audit bool
}

// Rule is one allow rule of a group.
type Rule struct {
	Proto Proto
	// Ports are the destination port ranges for tcp and udp; nil means all
	// ports. Always nil for other protocols.
	Ports []PortRange
	// ICMP restricts icmp and icmpv6 rules to one type (and maybe code);
	// nil means every type.
	ICMP *ICMP
	// Peers are the addresses as written: CIDRs, addresses, prefix-list
	// names, group references (group:NAME) or "any".
	Peers []string
	// Prefixes are the peers resolved to canonical prefixes, deduplicated,
	// in the order first written.
	Prefixes []netip.Prefix
	// GroupRefs are the groups the peers reference (group:NAME), each
	// once, in the order first written.
	GroupRefs []string
	// Members are the addresses GroupRefs stand for now, as single-address
	// prefixes: filled only in a copy made by File.ResolveGroups. The
	// table matches Prefixes and Members.
	Members     []netip.Prefix
	Description string
	// Limit, on an ingress rule, brakes each peer's new connections
	// (the limit key); nil means none.
	Limit *Limit
	Pos   Pos
	// ID is the rule's stable name, "sgr-" and 12 hex digits (see
	// IsRuleID): filled by Parse, empty in a Rule made any other way.
	ID string
}

// Proto is a rule's protocol: one IP protocol number, or all of them.
type Proto struct {
	All bool
	Num ipproto.Proto // meaningful when All is false
}

// HasPorts reports whether rules of this protocol take ports.
func (p Proto) HasPorts() bool { return !p.All && p.Num.HasPorts() }

// IsICMP reports whether rules of this protocol take an ICMP type and code.
func (p Proto) IsICMP() bool { return !p.All && p.Num.IsICMP() }

func (p Proto) String() string {
	if p.All {
		return "all"
	}
	return p.Num.String()
}

// CheckFamily reports an error when a connection of this protocol cannot
// have a peer of a's address family: icmp is IPv4's, icmpv6 is IPv6's.
func (p Proto) CheckFamily(a netip.Addr) error {
	switch {
	case p.All:
	case p.Num == ipproto.ICMP && a.Is6():
		return fmt.Errorf("icmp needs an IPv4 address, not %s: use icmpv6", a)
	case p.Num == ipproto.ICMPv6 && a.Is4():
		return fmt.Errorf("icmpv6 needs an IPv6 address, not %s: use icmp", a)
	}
	return nil
}

// ParseProto reads a protocol as the rules file and fwctl write it: tcp,
// udp, icmp, icmpv6, all (alias -1), or a number 0-255. Numbers of named
// protocols mean the named protocol (6 is tcp).
func ParseProto(s string) (Proto, error) {
	switch strings.ToLower(s) {
	case "all", "-1", "any":
		return Proto{All: true}, nil
	}
	n, err := ipproto.Parse(s)
	if err != nil {
		return Proto{}, fmt.Errorf("bad protocol %q: expected tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255", clip(s))
	}
	return Proto{Num: n}, nil
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	Lo, Hi uint16
}

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// ICMP restricts a rule to one ICMP type and, unless AnyCode, one code.
type ICMP struct {
	Type    uint8
	Code    uint8
	AnyCode bool
}

func (i ICMP) String() string {
	if i.AnyCode {
		return "type " + strconv.Itoa(int(i.Type))
	}
	return "type " + strconv.Itoa(int(i.Type)) + " code " + strconv.Itoa(int(i.Code))
}

// String renders a rule in words, e.g. "tcp 80,443 from any".
func (r *Rule) String() string { return r.Format(direction.Ingress) }

// Format renders a rule of direction d in words, naming its peers with
// d's word ("from" or "to").
func (r *Rule) Format(d direction.Dir) string {
	var b strings.Builder
	b.WriteString(r.Proto.String())
	if len(r.Ports) > 0 {
		b.WriteByte(' ')
		for i, p := range r.Ports {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(p.String())
		}
	}
	if r.ICMP != nil {
		b.WriteByte(' ')
		b.WriteString(r.ICMP.String())
	}
	b.WriteByte(' ')
	b.WriteString(d.PeerWord())
	b.WriteByte(' ')
	b.WriteString(strings.Join(r.Peers, ","))
	if r.Limit != nil {
		b.WriteString(" limit ")
		b.WriteString(r.Limit.String())
	}
	return b.String()
}

// Pos is a place in a rules file.
type Pos struct {
	Line, Col int
}

// Error is one problem in a rules file, at a place.
type Error struct {
	File string
	Pos  Pos
	Msg  string
	// more counts the errors this one stands for beyond itself: the last
	// entry of a capped ErrorList says "and N more errors".
	more int
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// ErrorList is every error found in one file, in file order. It is the
// error type that Load and Parse return for a bad file.
type ErrorList []*Error

// Count is the number of errors found, including those a long list
// leaves out and only counts in its last entry.
func (l ErrorList) Count() int {
	n := 0
	for _, e := range l {
		if e.more > 0 {
			n += e.more
		} else {
			n++
		}
	}
	return n
}

func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}
