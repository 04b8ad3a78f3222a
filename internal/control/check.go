package control

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

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
	// Iface is the interface the connection comes in on (dir in) or
	// leaves by (dir out); without it, an interface no group names.
	Iface string `json:"iface,omitempty"`
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
// /v1/check, of `fwctl check -o json` and, with only Verdict, Group,
// Rule, Reason and Codes set (or only Error), one line of `fwctl check
// --batch`. It marshals to the contract of DESIGN.md: {"verdict":"accept",
// "group":"web","rule":0}, {"verdict":"drop"}, "rule":null for an accept
// by a group's implicit egress default, {"error":"line 7: ..."}; number,
// description, hash, reason and codes follow when set (fields are only
// ever added after the existing ones; last, the rule's ID on an accept
// by a rule: "id":"sgr-cd50c0891d1f"). An accept by the host itself
// (reason loopback or neighbour-discovery) has neither group nor rule.
type CheckResult struct {
	Verdict     string `json:"verdict"`               // accept or drop
	Group       string `json:"group,omitempty"`       // the accepting group
	Rule        *int32 `json:"rule"`                  // index in the group's list; null for a group's default egress, absent on a drop
	Number      int    `json:"number,omitempty"`      // the rule's number in status numbered
	Description string `json:"description,omitempty"` // the verdict in words
	Hash        string `json:"hash,omitempty"`        // of the rules that answered
	// Reason says why: ReasonRule, ReasonDefaultEgress, ReasonLoopback,
	// ReasonNeighbourDiscovery or ReasonNoMatch.
	Reason string `json:"reason,omitempty"`
	// Codes is set when an icmp or icmpv6 query left the code out and a
	// rule accepts: the codes of the type that pass, as "0-255", "4" or
	// "0,2-5".
	Codes string `json:"codes,omitempty"`
	ID    string `json:"id,omitempty"` // the accepting rule's ID (rules.Rule.ID); absent unless Rule is set
	// ACL is the number of the ACL entry that decided (reason acl-allow
	// or acl-deny); absent (0) when the groups decided.
	ACL int `json:"acl,omitempty"`
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
		Reason      string          `json:"reason,omitempty"`
		Codes       string          `json:"codes,omitempty"`
		ID          string          `json:"id,omitempty"`
		ACL         int             `json:"acl,omitempty"`
	}{Verdict: r.Verdict, Number: r.Number, Description: r.Description, Hash: r.Hash, Reason: r.Reason, Codes: r.Codes, ACL: r.ACL}
	if r.Verdict == "accept" && !hostReason(r.Reason) && r.Reason != ReasonACLAllow && r.Reason != ReasonFailsafe {
		w.Group, w.Rule = r.Group, json.RawMessage("null")
		if r.Rule != nil {
			w.Rule = strconv.AppendInt(nil, int64(*r.Rule), 10)
			w.ID = r.ID
		}
	}
	return json.Marshal(w)
}

// Short is the answer as one --batch line has it: verdict, group, rule,
// reason, codes, the rule's ID and the deciding ACL entry.
func (r CheckResult) Short() CheckResult {
	return CheckResult{Verdict: r.Verdict, Group: r.Group, Rule: r.Rule, Reason: r.Reason, Codes: r.Codes, ID: r.ID, ACL: r.ACL, Error: r.Error}
}

// Check answers a query from table t: the verdict, why, the accepting
// group and rule, the rule's number, the verdict in words and the rules'
// hash.
func Check(t *filter.Table, a Ask) CheckResult {
	res, v := answer(t, a)
	if hostReason(res.Reason) {
		res.Description = hostDescription(a.Key)
	} else {
		res.Description = t.Describe(v)
		if a.AllProtos && !v.Accepted() {
			res.Description = fmt.Sprintf("dropped: not every protocol passes (no %s rule of protocol all covers the peer)", a.Key.Dir.Key())
		}
		if res.Codes != "" && res.Codes != allCodes {
			res.Description += fmt.Sprintf("; of type %d only code %s passes", a.Key.Type, res.Codes)
		}
	}
	if t.HasInterfaces() && a.Iface == "" && !hostReason(res.Reason) && res.ACL == 0 {
		res.Description += " (on an interface no group is attached to; give \"on IFACE\" for the groups of one)"
	}
	if f := t.File(); f != nil {
		res.Hash = f.Hash
		if res.Rule != nil {
			res.Number = lifecycle.NumberOf(f, rules.RuleRef{Group: int(v.Group), Dir: v.Dir, Index: int(v.Rule)})
		}
	}
	return res
}

// Answer answers a query from table t as one line of `fwctl check
// --batch` does: the verdict, the accepting group and rule, the reason and
// the codes.
func Answer(t *filter.Table, a Ask) CheckResult {
	res, _ := answer(t, a)
	return res
}

// Ask reads a query. It is the one reader of a query: POST /v1/check,
// `fwctl check --batch` and the words of `fwctl check` (made into a
// Query) all come here, so one bad query gets one error. An error for
// something left out (IsMissing) is told from one for a bad value.
func (q Query) Ask() (Ask, error) {
	var a Ask
	p, err := q.protocol()
	if err != nil {
		return a, err
	}
	a.Key.Proto, a.AllProtos = p.Num, p.All
	if q.Iface != "" {
		if err := rules.CheckIfacePattern(q.Iface); err != nil || strings.ContainsAny(q.Iface, "*+") {
			return a, fmt.Errorf("bad iface %q: expected an interface name such as eth1", q.Iface)
		}
		a.Iface = q.Iface
	}
	if a.Key.Dir, a.Key.Peer, err = q.peer(p); err != nil {
		return a, err
	}
	if q.Sport != nil && (*q.Sport < 0 || *q.Sport > 65535) {
		return a, fmt.Errorf("bad sport %d: expected 0-65535", *q.Sport)
	}
	switch {
	case p.HasPorts():
		a.Key.Port, err = q.dport(p)
	case p.IsICMP():
		a.Key.Type, a.Key.Code, err = q.icmp(p)
		a.AnyCode = q.Code == nil
	}
	return a, err
}

// Key turns a query into a lookup key, as Ask does (a query without an
// icmp code has code 0 here; protocol all is refused).
func (q Query) Key() (filter.Key, error) {
	a, err := q.Ask()
	if err == nil && a.AllProtos {
		err = fmt.Errorf("bad protocol %q: a lookup key has one protocol, not all", q.Proto)
	}
	return a.Key, err
}

// protocol reads the query's protocol. (A missing dir is said first: it
// is the query's first word.)
func (q Query) protocol() (rules.Proto, error) {
	if q.Dir == "" {
		return rules.Proto{}, missing("missing dir: expected \"in\" or \"out\"")
	}
	if _, err := direction.Parse(q.Dir); err != nil {
		return rules.Proto{}, err
	}
	if q.Proto == "" {
		return rules.Proto{}, missing("missing proto")
	}
	return rules.ParseProto(q.Proto)
}

// peer reads the direction and the peer's address (src for in, dst for
// out), of a family that fits p; the host's address, when given, must be
// an address too.
func (q Query) peer(p rules.Proto) (direction.Dir, netip.Addr, error) {
	d, err := direction.Parse(q.Dir)
	if err != nil {
		return d, netip.Addr{}, err
	}
	peerField, peer, host := "src", q.Src, q.Dst
	if d == direction.Egress {
		peerField, peer, host = "dst", q.Dst, q.Src
	}
	if peer == "" {
		return d, netip.Addr{}, missing("missing %s: the peer's address", peerField)
	}
	a, err := rules.ParseAddr(peer)
	if err != nil {
		return d, a, err
	}
	if err := p.CheckFamily(a); err != nil {
		return d, a, err
	}
	if host != "" {
		if _, err := rules.ParseAddr(host); err != nil {
			return d, a, err
		}
	}
	return d, a, nil
}

// dport reads the destination port that tcp and udp need.
func (q Query) dport(p rules.Proto) (uint16, error) {
	if q.Dport == nil {
		return 0, missing("missing dport: %s needs a destination port", p)
	}
	if *q.Dport < 0 || *q.Dport > 65535 {
		return 0, fmt.Errorf("bad dport %d: expected 0-65535", *q.Dport)
	}
	return uint16(*q.Dport), nil
}

// icmp reads the type that icmp and icmpv6 need, and the code (0 when
// not given: Ask then asks about every code).
func (q Query) icmp(p rules.Proto) (typ, code uint8, err error) {
	if q.Type == nil {
		return 0, 0, missing("missing type: %s needs an icmp type", p)
	}
	if *q.Type < 0 || *q.Type > 255 {
		return 0, 0, fmt.Errorf("bad type %d: expected 0-255", *q.Type)
	}
	if q.Code != nil {
		if *q.Code < 0 || *q.Code > 255 {
			return 0, 0, fmt.Errorf("bad code %d: expected 0-255", *q.Code)
		}
		code = uint8(*q.Code)
	}
	return uint8(*q.Type), code, nil
}

// QueryOf is the query for a lookup key.
func QueryOf(k filter.Key) Query {
	q := Query{Dir: k.Dir.String(), Proto: strconv.Itoa(int(k.Proto))}
	if k.Dir == direction.Egress {
		q.Dst = k.Peer.String()
	} else {
		q.Src = k.Peer.String()
	}
	switch k.Proto {
	case ipproto.TCP, ipproto.UDP:
		p := int(k.Port)
		q.Dport = &p
	case ipproto.ICMP, ipproto.ICMPv6:
		t, c := int(k.Type), int(k.Code)
		q.Type, q.Code = &t, &c
	}
	return q
}
