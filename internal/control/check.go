package control

import (
	"encoding/json"
	"errors"
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
// Rule set (and ID; or only Error), one line of `fwctl check --batch`.
// It marshals to the contract of DESIGN.md: {"verdict":"accept","group":
// "web","rule":0}, {"verdict":"drop"}, "rule":null for an accept by a
// group's implicit egress default, {"error":"line 7: ..."}; number,
// description and hash follow when set, and last the rule's ID on an
// accept by a rule: {"verdict":"accept","group":"web","rule":0,
// "id":"sgr-cd50c0891d1f"}.
type CheckResult struct {
	Verdict     string `json:"verdict"`               // accept or drop
	Group       string `json:"group,omitempty"`       // the accepting group
	Rule        *int32 `json:"rule"`                  // index in the group's list; null for a group's default egress, absent on a drop
	Number      int    `json:"number,omitempty"`      // the rule's number in status numbered
	Description string `json:"description,omitempty"` // the verdict in words
	Hash        string `json:"hash,omitempty"`        // of the rules that answered
	ID          string `json:"id,omitempty"`          // the accepting rule's ID (rules.Rule.ID); absent unless Rule is set
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
		ID          string          `json:"id,omitempty"`
	}{Verdict: r.Verdict, Number: r.Number, Description: r.Description, Hash: r.Hash}
	if r.Verdict == "accept" {
		w.Group, w.Rule = r.Group, json.RawMessage("null")
		if r.Rule != nil {
			w.Rule = strconv.AppendInt(nil, int64(*r.Rule), 10)
			w.ID = r.ID
		}
	}
	return json.Marshal(w)
}

// Short is the answer as one --batch line has it: verdict, group, rule
// and the rule's ID.
func (r CheckResult) Short() CheckResult {
	return CheckResult{Verdict: r.Verdict, Group: r.Group, Rule: r.Rule, ID: r.ID, Error: r.Error}
}

// Check answers a query from table t: the verdict, the accepting group
// and rule, the rule's number, the verdict in words and the rules' hash.
func Check(t *filter.Table, k filter.Key) CheckResult {
	v := t.Match(k)
	res := answerOf(t, v)
	res.Description = t.Describe(v)
	if f := t.File(); f != nil {
		res.Hash = f.Hash
		if res.Rule != nil {
			res.Number = lifecycle.NumberOf(f, rules.RuleRef{Group: int(v.Group), Dir: v.Dir, Index: int(v.Rule)})
		}
	}
	return res
}

// Answer answers a query from table t as one line of `fwctl check
// --batch` does: the verdict, the accepting group and rule and its ID
// only.
func Answer(t *filter.Table, k filter.Key) CheckResult {
	return answerOf(t, t.Match(k))
}

func answerOf(t *filter.Table, v filter.Result) CheckResult {
	res := CheckResult{Verdict: "drop"}
	if v.Accepted() {
		res.Verdict, res.Group = "accept", t.GroupName(v.Group)
		if v.Rule != filter.NoRule {
			rule := v.Rule
			res.Rule = &rule
			if r := t.Rule(v); r != nil {
				res.ID = r.ID
			}
		}
	}
	return res
}

// Key turns a query into a lookup key. It is the one reader of a query:
// POST /v1/check, `fwctl check --batch` and the words of `fwctl check`
// (made into a Query) all come here, so one bad query gets one error.
func (q Query) Key() (filter.Key, error) {
	var k filter.Key
	p, err := q.protocol()
	if err != nil {
		return k, err
	}
	k.Proto = p.Num
	if k.Dir, k.Peer, err = q.peer(p); err != nil {
		return k, err
	}
	if q.Sport != nil && (*q.Sport < 0 || *q.Sport > 65535) {
		return k, fmt.Errorf("bad sport %d: expected 0-65535", *q.Sport)
	}
	switch {
	case p.HasPorts():
		k.Port, err = q.dport(p)
	case p.IsICMP():
		k.Type, k.Code, err = q.icmp(p)
	}
	return k, err
}

// protocol reads the query's protocol: one, not all. (A missing dir is
// said first: it is the query's first word.)
func (q Query) protocol() (rules.Proto, error) {
	if q.Dir == "" {
		return rules.Proto{}, errors.New("missing dir: expected \"in\" or \"out\"")
	}
	if _, err := direction.Parse(q.Dir); err != nil {
		return rules.Proto{}, err
	}
	if q.Proto == "" {
		return rules.Proto{}, errors.New("missing proto")
	}
	p, err := rules.ParseProto(q.Proto)
	if err != nil {
		return p, err
	}
	if p.All {
		return p, fmt.Errorf("bad protocol %q: a connection has one protocol, not all", q.Proto)
	}
	return p, nil
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
		return d, netip.Addr{}, fmt.Errorf("missing %s: the peer's address", peerField)
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
		return 0, fmt.Errorf("missing dport: %s needs a destination port", p)
	}
	if *q.Dport < 0 || *q.Dport > 65535 {
		return 0, fmt.Errorf("bad dport %d: expected 0-65535", *q.Dport)
	}
	return uint16(*q.Dport), nil
}

// icmp reads the type that icmp and icmpv6 need, and the code (0 when
// not given).
func (q Query) icmp(p rules.Proto) (typ, code uint8, err error) {
	if q.Type == nil {
		return 0, 0, fmt.Errorf("missing type: %s needs an icmp type", p)
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
