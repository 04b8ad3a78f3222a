package lifecycle

import (
	"fmt"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// The lifecycle's inputs and outputs. The control API sends them as
// JSON as they are: their fields and tags are the wire format.

// DefaultGroup is the group runtime edits go to.
const DefaultGroup = "local"

// ReloadResult is the result of a successful reload.
type ReloadResult struct {
	Changed  bool     `json:"changed"` // false: the file's bytes were those of the live rules, nothing done
	Hash     string   `json:"hash"`    // sha256 of the live rules file
	Groups   int      `json:"groups"`
	Rules    int      `json:"rules"`
	Message  string   `json:"message"`
	Warnings []string `json:"warnings,omitempty"`
	// Cut is how many established connections the reload cut because
	// the live rules no longer allow them; present only when the reload
	// was asked to revoke (ReloadOptions.Revoke).
	Cut *int `json:"cut,omitempty"`
	// Confirm is the confirmation this change waits for (confirm=D).
	Confirm *Pending `json:"confirm,omitempty"`
}

// ReloadStats counts reload attempts of every origin (SIGHUP, the API,
// edits). The daemon's first load is not one of them.
type ReloadStats struct {
	OK        uint64 `json:"ok"`
	Failed    uint64 `json:"failed"`
	Unchanged uint64 `json:"unchanged"`
	LastError *Error `json:"last_error,omitempty"`
}

// RuleSpec is one rule as an edit takes it.
type RuleSpec struct {
	Dir         string    `json:"dir"`             // "in" (the default) or "out"
	Proto       string    `json:"proto"`           // tcp, udp, icmp, icmpv6, all or a number
	Ports       []string  `json:"ports,omitempty"` // "443", "6000-6007"; none: all ports
	ICMP        *ICMPSpec `json:"icmp,omitempty"`
	Peers       []string  `json:"peers,omitempty"` // CIDRs, addresses, prefix lists, any; none: any
	Description string    `json:"description,omitempty"`

	// Limit brakes each peer's new connections (ingress only: see
	// rules.Limit); nil: none.
	Limit *LimitSpec `json:"limit,omitempty"`
}

// ICMPSpec is an ICMP type and, optionally, code.
type ICMPSpec struct {
	Type int  `json:"type"`
	Code *int `json:"code,omitempty"`
}

// RuleInfo is one rule of the live table, numbered as `fwctl delete N`
// takes it, with its ID as `fwctl delete ID` takes it.
type RuleInfo struct {
	Number int    `json:"number"`
	ID     string `json:"id"` // stable: see rules.IsRuleID
	Group  string `json:"group"`
	Index  int    `json:"index"` // in the group's ingress or egress list
	RuleSpec
	Text string  `json:"text"` // e.g. "tcp 80,443 from any"
	Hits *uint64 `json:"hits"` // connections accepted by it; null when not counted
	// Interfaces are those the rule's group is attached to; absent for
	// a group on every interface.
	Interfaces []string `json:"interfaces,omitempty"`
}

// AddRequest asks to add rules.
type AddRequest struct {
	Group string     `json:"group,omitempty"` // default "local" ("local-IFACE" with Interface)
	Rules []RuleSpec `json:"rules"`
	// Interface, when set, is the interface (or pattern, eth*) the rules
	// apply on (fwctl allow in on eth1 ...): they go to a group attached
	// to exactly that interface, created when absent (see AddRulesOn).
	Interface string `json:"interface,omitempty"`
}

// DeleteRequest asks to delete rules by number, by ID, or every rule
// that allows exactly the traffic of a spec.
type DeleteRequest struct {
	Numbers []int      `json:"numbers,omitempty"`
	IDs     []string   `json:"ids,omitempty"` // e.g. "sgr-1d2c3b4a5f6e"
	Rules   []RuleSpec `json:"rules,omitempty"`
	// Revoke also cuts the established connections the rules left no
	// longer allow (fwctl delete --revoke); by default they keep going.
	Revoke bool `json:"revoke,omitempty"`
	// Interface, when set, narrows Rules to the groups attached to
	// exactly that interface (or pattern), as an add on it made them
	// (fwctl delete allow in on eth1 ...); unset, Rules match in every
	// group.
	Interface string `json:"interface,omitempty"`
}

// EditResult is the result of an edit.
type EditResult struct {
	DryRun  bool       `json:"dry_run"`
	Changed bool       `json:"changed"`
	Added   []RuleInfo `json:"added,omitempty"`
	Deleted []RuleInfo `json:"deleted,omitempty"`
	Skipped []Skipped  `json:"skipped,omitempty"`
	Notes   []string   `json:"notes,omitempty"`
	Diff    string     `json:"diff,omitempty"` // of the rules file, unified
	Hash    string     `json:"hash"`           // of the rules file after the edit
	// ACL edits: the entries added, skipped (an entry of the same
	// action and traffic is there), deleted, and removed because they
	// had expired (every ACL edit removes those).
	ACLAdded   []ACLInfo `json:"acl_added,omitempty"`
	ACLSkipped []ACLInfo `json:"acl_skipped,omitempty"`
	ACLDeleted []ACLInfo `json:"acl_deleted,omitempty"`
	ACLExpired []ACLInfo `json:"acl_expired,omitempty"`
	// Revoked is how many established connections an added deny entry
	// cut (conntrack entries deleted), when the daemon revokes.
	Revoked int `json:"revoked,omitempty"`
	// Cut is how many established connections a delete asked to revoke
	// (DeleteRequest.Revoke) cut because the new rules no longer allow
	// them; absent when it was not asked to, or on a dry run.
	Cut *int `json:"cut,omitempty"`
	// Confirm is the confirmation this change waits for (confirm=D).
	Confirm *Pending `json:"confirm,omitempty"`
}

// Skipped is a rule an add left out because one allowing the same traffic
// is there already.
type Skipped struct {
	Rule     RuleSpec `json:"rule"`
	Existing RuleInfo `json:"existing"`
}

// specOf renders a decoded rule as a spec.
func specOf(r *rules.Rule, dir direction.Dir) RuleSpec {
	s := RuleSpec{Dir: "in", Proto: r.Proto.String(), Peers: r.Peers, Description: r.Description}
	if dir == direction.Egress {
		s.Dir = "out"
	}
	for _, p := range r.Ports {
		s.Ports = append(s.Ports, p.String())
	}
	s.Limit = limitSpecOf(r.Limit)
	if r.ICMP != nil {
		s.ICMP = &ICMPSpec{Type: int(r.ICMP.Type)}
		if !r.ICMP.AnyCode {
			c := int(r.ICMP.Code)
			s.ICMP.Code = &c
		}
	}
	return s
}

// Rule turns a spec into a rule and its direction, checking every field
// that can be checked without the rules file (prefix-list names are
// checked when the edit is decoded).
func (s RuleSpec) Rule() (rules.Rule, direction.Dir, error) {
	var r rules.Rule
	dir := direction.Ingress
	if s.Dir != "" {
		d, err := direction.Parse(s.Dir)
		if err != nil {
			return r, dir, err
		}
		dir = d
	}
	if s.Proto == "" {
		return r, dir, fmt.Errorf("missing proto: expected tcp, udp, icmp, icmpv6, all or a number")
	}
	p, err := rules.ParseProto(s.Proto)
	if err != nil {
		return r, dir, err
	}
	r.Proto = p
	if len(s.Ports) > 0 && !p.HasPorts() {
		return r, dir, fmt.Errorf("ports on proto %s: only tcp and udp rules take ports", p)
	}
	for _, ps := range s.Ports {
		pr, err := rules.ParsePortRange(ps)
		if err != nil {
			return r, dir, err
		}
		r.Ports = append(r.Ports, pr)
	}
	if err := s.icmp(&r); err != nil {
		return r, dir, err
	}
	r.Peers = s.Peers
	if len(r.Peers) == 0 {
		r.Peers = []string{"any"}
	}
	for _, peer := range r.Peers {
		if strings.TrimSpace(peer) == "" {
			return r, dir, fmt.Errorf("empty peer: expected a CIDR, an address, a prefix list name or any")
		}
	}
	if err := rules.CheckDescription(s.Description); err != nil {
		return r, dir, err
	}
	r.Description = s.Description
	if r.Limit, err = s.Limit.limit(dir); err != nil {
		return r, dir, err
	}
	return r, dir, nil
}

// icmp sets r's ICMP type and code from the spec's.
func (s RuleSpec) icmp(r *rules.Rule) error {
	if s.ICMP == nil {
		return nil
	}
	if !r.Proto.IsICMP() {
		return fmt.Errorf("icmp type on proto %s: only icmp and icmpv6 rules take one", r.Proto)
	}
	if s.ICMP.Type < 0 || s.ICMP.Type > 255 {
		return fmt.Errorf("icmp type %d out of range: expected 0-255", s.ICMP.Type)
	}
	r.ICMP = &rules.ICMP{Type: uint8(s.ICMP.Type), AnyCode: true}
	if s.ICMP.Code != nil {
		if *s.ICMP.Code < 0 || *s.ICMP.Code > 255 {
			return fmt.Errorf("icmp code %d out of range: expected 0-255", *s.ICMP.Code)
		}
		r.ICMP.Code, r.ICMP.AnyCode = uint8(*s.ICMP.Code), false
	}
	return nil
}

// Text renders the spec in the words of the rules package, e.g.
// "tcp 443 from any".
func (s RuleSpec) Text() string {
	r, dir, err := s.Rule()
	if err != nil {
		return fmt.Sprintf("%s %s", s.Proto, strings.Join(s.Ports, ","))
	}
	return r.Format(dir)
}
