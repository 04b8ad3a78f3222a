// Package control is fwd's control plane: an HTTP+JSON API on a Unix
// socket (so that curl --unix-socket works), the all-or-nothing reload
// service behind it, and the Go client fwctl speaks it with.
//
// Every connection's peer is checked with SO_PEERCRED before a byte of
// its request is read: root (and, when configured, members of one group)
// only. Request bodies are size-limited. Paths are versioned (/v1/...).
// Errors are JSON objects {"error":{"code":"...","message":"..."}} with a
// stable code (the Code constants) that scripts may test.
//
// The Service is the one path by which a rules table goes live: SIGHUP,
// POST /v1/reload and runtime edits all go through it, one at a time.
// It reads the rules file, decodes it strictly, compiles it and only then
// swaps it in; on any error the live table stays and the error lists every
// file:line:column problem. Edits change the file's text (comments and
// order kept), validate and compile the result, replace the file
// atomically and swap the table in the same step.
package control

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// DefaultSocket is where fwd listens and fwctl connects by default.
const DefaultSocket = "/run/fwd/fwd.sock"

// DefaultMaxBody is the largest request body the server reads.
const DefaultMaxBody = 64 << 10

// DefaultGroup is the group runtime edits go to.
const DefaultGroup = "local"

// Code is a stable error code of the API.
type Code string

// Error codes. They are part of the API: scripts may depend on them.
const (
	CodeBadRequest    Code = "bad_request" // malformed JSON, unknown field, bad value
	CodeNotFound      Code = "not_found"   // no such path, or no rule to delete
	CodeMethod        Code = "method_not_allowed"
	CodeTooLarge      Code = "too_large"      // request body over the limit
	CodeForbidden     Code = "forbidden"      // the peer is not root or in the socket group
	CodeInvalidRules  Code = "invalid_rules"  // the rules file (or the edit's result) has errors: details lists them
	CodeEgressOmitted Code = "egress_omitted" // egress rule for a group that allows all outbound
	CodeReadOnly      Code = "read_only"      // edits are refused: fwd runs on its shipped default rules
	CodeUnavailable   Code = "unavailable"    // the daemon has no table yet
	CodeReadFailed    Code = "read_failed"    // the rules file cannot be read
	CodeWriteFailed   Code = "write_failed"   // the rules file cannot be replaced: nothing changed
	CodeApplyFailed   Code = "apply_failed"   // compiling or preparing the kernel failed: nothing changed
	CodeInternal      Code = "internal"
)

// Error is an API error: what the server replies and what the client
// returns for a non-2xx reply.
type Error struct {
	Status  int      `json:"-"`
	Code    Code     `json:"code"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"` // every file:line:col error, for invalid_rules
}

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return e.Message
	}
	return e.Message + ":\n  " + strings.Join(e.Details, "\n  ")
}

// errorBody is the JSON envelope of an error reply.
type errorBody struct {
	Error *Error `json:"error"`
}

// ReloadResult is the reply of a successful reload.
type ReloadResult struct {
	Changed  bool     `json:"changed"` // false: the file's bytes were those of the live rules, nothing done
	Hash     string   `json:"hash"`    // sha256 of the live rules file
	Groups   int      `json:"groups"`
	Rules    int      `json:"rules"`
	Message  string   `json:"message"`
	Warnings []string `json:"warnings,omitempty"`
}

// ReloadStats counts reload attempts of every origin (SIGHUP, the API,
// edits).
type ReloadStats struct {
	OK        uint64 `json:"ok"`
	Failed    uint64 `json:"failed"`
	Unchanged uint64 `json:"unchanged"`
	LastError *Error `json:"last_error,omitempty"`
}

// Status is the reply of GET /v1/status.
type Status struct {
	Status          string            `json:"status"` // "active", or "waiting" before the first table
	RulesPath       string            `json:"rules_path"`
	Hash            string            `json:"hash"`
	Groups          int               `json:"groups"`
	DefaultIncoming string            `json:"default_incoming"` // always "deny"
	DefaultOutgoing string            `json:"default_outgoing"` // "allow" when a group omits egress, else "deny"
	OpenEgress      []string          `json:"open_egress,omitempty"`
	Reloads         ReloadStats       `json:"reloads"`
	Counters        map[string]uint64 `json:"counters,omitempty"`
	Rules           []RuleInfo        `json:"rules"`
}

// RuleSpec is one rule as the API takes it.
type RuleSpec struct {
	Dir         string    `json:"dir"`             // "in" (the default) or "out"
	Proto       string    `json:"proto"`           // tcp, udp, icmp, icmpv6, all or a number
	Ports       []string  `json:"ports,omitempty"` // "443", "6000-6007"; none: all ports
	ICMP        *ICMPSpec `json:"icmp,omitempty"`
	Peers       []string  `json:"peers,omitempty"` // CIDRs, addresses, prefix lists, any; none: any
	Description string    `json:"description,omitempty"`
}

// ICMPSpec is an ICMP type and, optionally, code.
type ICMPSpec struct {
	Type int  `json:"type"`
	Code *int `json:"code,omitempty"`
}

// RuleInfo is one rule of the live table, numbered as `fwctl delete N`
// takes it.
type RuleInfo struct {
	Number int    `json:"number"`
	Group  string `json:"group"`
	Index  int    `json:"index"` // in the group's ingress or egress list
	RuleSpec
	Text string  `json:"text"` // e.g. "tcp 80,443 from any"
	Hits *uint64 `json:"hits"` // connections accepted by it; null when not counted
}

// AddRequest is the body of POST /v1/rules.
type AddRequest struct {
	Group string     `json:"group,omitempty"` // default "local"
	Rules []RuleSpec `json:"rules"`
}

// DeleteRequest is the body of DELETE /v1/rules: rules by number, or
// every rule that allows exactly the traffic of a spec.
type DeleteRequest struct {
	Numbers []int      `json:"numbers,omitempty"`
	Rules   []RuleSpec `json:"rules,omitempty"`
}

// EditResult is the reply of an edit.
type EditResult struct {
	DryRun  bool       `json:"dry_run"`
	Changed bool       `json:"changed"`
	Added   []RuleInfo `json:"added,omitempty"`
	Deleted []RuleInfo `json:"deleted,omitempty"`
	Skipped []Skipped  `json:"skipped,omitempty"`
	Notes   []string   `json:"notes,omitempty"`
	Diff    string     `json:"diff,omitempty"` // of the rules file, unified
	Hash    string     `json:"hash"`           // of the rules file after the edit
}

// Skipped is a rule an add left out because one allowing the same traffic
// is there already.
type Skipped struct {
	Rule     RuleSpec `json:"rule"`
	Existing RuleInfo `json:"existing"`
}

// Query is the body of POST /v1/check: one new connection, in the
// format of `fwctl check --batch` (dir in: the peer is src; out: dst).
type Query struct {
	Dir   string `json:"dir"`
	Proto string `json:"proto"`
	Src   string `json:"src,omitempty"`
	Dst   string `json:"dst,omitempty"`
	Sport *int   `json:"sport,omitempty"`
	Dport *int   `json:"dport,omitempty"`
	Type  *int   `json:"type,omitempty"`
	Code  *int   `json:"code,omitempty"`
}

// UnmarshalJSON takes proto as a name or a number.
func (q *Query) UnmarshalJSON(b []byte) error {
	type plain Query
	var aux struct {
		plain
		Proto json.RawMessage `json:"proto"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	*q = Query(aux.plain)
	if len(aux.Proto) > 0 {
		var s string
		if err := json.Unmarshal(aux.Proto, &s); err != nil {
			var n int
			if err := json.Unmarshal(aux.Proto, &n); err != nil {
				return fmt.Errorf("bad proto %s: expected a name or a number", aux.Proto)
			}
			s = strconv.Itoa(n)
		}
		q.Proto = s
	}
	return nil
}

// CheckResult is the answer to a check query: the reply of POST
// /v1/check, of `fwctl check -o json` and, with only Verdict, Group and
// Rule set (or only Error), one line of `fwctl check --batch`. It
// marshals to the contract of DESIGN.md: {"verdict":"accept","group":"web",
// "rule":0}, {"verdict":"drop"}, "rule":null for an accept by a group's
// implicit egress default, {"error":"line 7: ..."}; number, description
// and hash follow when set.
type CheckResult struct {
	Verdict     string `json:"verdict"`               // accept or drop
	Group       string `json:"group,omitempty"`       // the accepting group
	Rule        *int32 `json:"rule"`                  // index in the group's list; null for a group's default egress, absent on a drop
	Number      int    `json:"number,omitempty"`      // the rule's number in status numbered
	Description string `json:"description,omitempty"` // the verdict in words
	Hash        string `json:"hash,omitempty"`        // of the rules that answered
	// Error is a --batch line's answer to a query it could not read; the
	// other fields are then empty. The API answers errors with an Error.
	Error string `json:"error,omitempty"`
}

// MarshalJSON writes the contract: group and rule on an accept only, rule
// null when no rule of the group's list accepted.
func (r CheckResult) MarshalJSON() ([]byte, error) {
	if r.Error != "" {
		return json.Marshal(struct {
			Error string `json:"error"`
		}{r.Error})
	}
	w := struct {
		Verdict     string          `json:"verdict"`
		Group       string          `json:"group,omitempty"`
		Rule        json.RawMessage `json:"rule,omitempty"`
		Number      int             `json:"number,omitempty"`
		Description string          `json:"description,omitempty"`
		Hash        string          `json:"hash,omitempty"`
	}{Verdict: r.Verdict, Number: r.Number, Description: r.Description, Hash: r.Hash}
	if r.Verdict == "accept" {
		w.Group, w.Rule = r.Group, json.RawMessage("null")
		if r.Rule != nil {
			w.Rule = strconv.AppendInt(nil, int64(*r.Rule), 10)
		}
	}
	return json.Marshal(w)
}

// Short is the answer as one --batch line has it: verdict, group and rule.
func (r CheckResult) Short() CheckResult {
	return CheckResult{Verdict: r.Verdict, Group: r.Group, Rule: r.Rule, Error: r.Error}
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
	if s.ICMP != nil {
		if !p.IsICMP() {
			return r, dir, fmt.Errorf("icmp type on proto %s: only icmp and icmpv6 rules take one", p)
		}
		if s.ICMP.Type < 0 || s.ICMP.Type > 255 {
			return r, dir, fmt.Errorf("icmp type %d out of range: expected 0-255", s.ICMP.Type)
		}
		r.ICMP = &rules.ICMP{Type: uint8(s.ICMP.Type), AnyCode: true}
		if s.ICMP.Code != nil {
			if *s.ICMP.Code < 0 || *s.ICMP.Code > 255 {
				return r, dir, fmt.Errorf("icmp code %d out of range: expected 0-255", *s.ICMP.Code)
			}
			r.ICMP.Code, r.ICMP.AnyCode = uint8(*s.ICMP.Code), false
		}
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
	return r, dir, nil
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
