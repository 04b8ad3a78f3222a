package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/types/direction"
	"gopkg.in/yaml.v3"
)

// The bounds of an ACL entry's number, as in an AWS network ACL.
const (
	MinACLNumber = 1
	MaxACLNumber = 32766
)

// ACL is the network-ACL layer of a rules file: numbered allow and deny
// entries for ingress and egress, evaluated for each new connection
// before the security groups, lowest number first; the first entry that
// matches decides, and a connection no entry matches falls through to
// the groups. Both lists are in file order (not sorted); numbers are
// unique within a list.
type ACL struct {
	Ingress []ACLEntry
	Egress  []ACLEntry
	Pos     Pos // of the acl key; zero when the file has none
}

// Len is the number of entries in both directions.
func (a *ACL) Len() int { return len(a.Ingress) + len(a.Egress) }

// List returns the entries of direction d, in file order.
func (a *ACL) List(d direction.Dir) []ACLEntry {
	if d == direction.Egress {
		return a.Egress
	}
	return a.Ingress
}

// Find returns the index in List(d) of the entry numbered n, or -1.
func (a *ACL) Find(d direction.Dir, n int) int {
	return slices.IndexFunc(a.List(d), func(e ACLEntry) bool { return e.Number == n })
}

// Sorted returns the indexes into List(d) ordered by number: the order
// in which the entries are evaluated.
func (a *ACL) Sorted(d direction.Dir) []int {
	list := a.List(d)
	idx := make([]int, len(list))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int { return list[x].Number - list[y].Number })
	return idx
}

// Action is what an ACL entry does with the connections it matches.
type Action uint8

const (
	// Deny drops the new connection; the groups are not asked.
	Deny Action = iota
	// Allow accepts the new connection; the groups are not asked.
	Allow
)

func (a Action) String() string {
	if a == Allow {
		return "allow"
	}
	return "deny"
}

// ParseAction reads "allow" or "deny".
func ParseAction(s string) (Action, error) {
	switch s {
	case "allow":
		return Allow, nil
	case "deny":
		return Deny, nil
	}
	return Deny, fmt.Errorf("bad action %q: expected allow or deny", clip(s))
}

// ACLEntry is one numbered entry of the ACL. Its traffic (Proto, Ports,
// ICMP, Peers, Prefixes) means what a group rule's does.
type ACLEntry struct {
	Number int // MinACLNumber..MaxACLNumber, unique in its direction
	Action Action
	Proto  Proto
	// Ports: destination port ranges for tcp and udp; nil means all.
	Ports []PortRange
	// ICMP: one icmp type (and maybe code); nil means every type.
	ICMP     *ICMP
	Peers    []string       // as written
	Prefixes []netip.Prefix // resolved, canonical, deduplicated
	// Description is free text, e.g. why an address is banned.
	Description string
	// Expires is when the entry lifts itself; the zero time means never.
	// An entry past its expiry stays in the file (until an edit removes
	// it) but no compiled table matches it.
	Expires time.Time
	Pos     Pos
}

// Rule returns the entry's traffic as a group rule, to share Format.
func (e *ACLEntry) Rule() Rule {
	return Rule{Proto: e.Proto, Ports: e.Ports, ICMP: e.ICMP, Peers: e.Peers, Prefixes: e.Prefixes}
}

// Expired reports whether the entry has an expiry at or before now.
func (e *ACLEntry) Expired(now time.Time) bool {
	return !e.Expires.IsZero() && !now.Before(e.Expires)
}

// Format renders the entry in words, e.g. "100 deny tcp 22 from
// 203.0.113.9", with d's peer word.
func (e *ACLEntry) Format(d direction.Dir) string {
	r := e.Rule()
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.Number))
	b.WriteByte(' ')
	b.WriteString(e.Action.String())
	b.WriteByte(' ')
	b.WriteString(r.Format(d))
	if !e.Expires.IsZero() {
		b.WriteString(" until ")
		b.WriteString(e.Expires.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// acl reads the acl section: a mapping with ingress and egress lists.
func (d *decoder) acl(k, n *yaml.Node) ACL {
	a := ACL{Pos: pos(k)}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return a // "acl:" with nothing: no entries, as when omitted
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "acl: expected a mapping with ingress and egress lists of numbered entries, got %s", kindName(n))
		return a
	}
	d.fields(n, "acl", []string{"ingress", "egress"}, func(key string, _, v *yaml.Node) {
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			return
		}
		dir := direction.Ingress
		if key == "egress" {
			dir = direction.Egress
		}
		list := d.aclEntries(v, dir)
		if dir == direction.Egress {
			a.Egress = list
		} else {
			a.Ingress = list
		}
	})
	return a
}

func (d *decoder) aclEntries(n *yaml.Node, dir direction.Dir) []ACLEntry {
	items, ok := d.seq(n, "acl "+dir.Key())
	if !ok {
		return nil
	}
	out := make([]ACLEntry, 0, len(items))
	numbers := map[int]int{} // number → line of its first entry
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
		e, numNode, ok := d.aclEntry(it, dir)
		if numNode != nil && e.Number != 0 {
			if line, dup := numbers[e.Number]; dup {
				d.errorf(numNode, "duplicate acl %s number %d (first at line %d): numbers are unique in a direction", dir.Key(), e.Number, line)
				ok = false
			} else {
				numbers[e.Number] = numNode.Line
			}
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

func (d *decoder) aclEntry(n *yaml.Node, dir direction.Dir) (ACLEntry, *yaml.Node, bool) {
	what := "acl " + dir.Key() + " entry"
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping such as {number: 100, action: deny, proto: tcp, ports: 22, %s: [203.0.113.9]}, got %s", what, dir.PeerWord(), kindName(n))
		return ACLEntry{}, nil, false
	}
	e := ACLEntry{Pos: pos(n)}
	var numNode, actionNode *yaml.Node
	errsBefore := len(d.errs)
	r, _ := d.traffic(n, what, dir, []string{"number", "action", "expires"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "number":
			numNode = v
			if x, ok := d.intValue(v, "acl entry number"); ok {
				if x < MinACLNumber || x > MaxACLNumber {
					d.errorf(v, "acl entry number %d out of range: expected %d-%d", x, MinACLNumber, MaxACLNumber)
				} else {
					e.Number = int(x)
				}
			}
		case "action":
			actionNode = v
			if s, ok := d.scalar(v, "action", "allow or deny"); ok {
				a, err := ParseAction(s)
				if err != nil {
					d.errorf(v, "%v", err)
				}
				e.Action = a
			}
		case "expires":
			if s, ok := d.scalar(v, "expires", "an RFC 3339 time such as 2026-01-02T15:04:05Z"); ok {
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					d.errorf(v, "bad expires %q: expected an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
				}
				e.Expires = t
			}
		}
	})
	if numNode == nil {
		d.errorf(n, "%s without number: expected number: %d-%d (lowest first)", what, MinACLNumber, MaxACLNumber)
	}
	if actionNode == nil {
		d.errorf(n, "%s without action: expected action: allow or deny", what)
	}
	if len(r.GroupRefs) > 0 {
		d.errorf(n, "%s names group %q: the acl takes addresses only, a group reference belongs in a group's rules", what, r.GroupRefs[0])
	}
	e.Proto, e.Ports, e.ICMP, e.Peers, e.Prefixes, e.Description = r.Proto, r.Ports, r.ICMP, r.Peers, r.Prefixes, r.Description
	return e, numNode, len(d.errs) == errsBefore
}
