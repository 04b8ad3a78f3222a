package control

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/kernel"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// The reasons a check answer gives (CheckResult.Reason).
const (
	ReasonRule               = "rule"                // a rule of a group accepts
	ReasonDefaultEgress      = "default-egress"      // a group that omits egress accepts every outbound connection
	ReasonLoopback           = "loopback"            // the host accepts loopback traffic before fwd sees it
	ReasonNeighbourDiscovery = "neighbour-discovery" // the host accepts IPv6 neighbour discovery and MLD before fwd sees it
	ReasonNoMatch            = "no-match"            // nothing accepts: dropped
	ReasonACLAllow           = "acl-allow"           // an ACL entry allows it, before the groups
	ReasonACLDeny            = "acl-deny"            // an ACL entry denies it, before the groups
	ReasonFailsafe           = "failsafe"            // the failsafe admits new ssh from an admin's address, before the ACL and the groups
)

// Conntrack's ESTABLISHED and RELATED are no reason a check answer gives:
// a query is one new connection, with nothing before it. `fwctl replay`,
// which sees what came before, gives them.

// hostReason reports whether reason names an accept by the host itself,
// before any rule: such an answer has no group and no rule.
func hostReason(reason string) bool {
	return reason == ReasonLoopback || reason == ReasonNeighbourDiscovery
}

// Ask is a query as Query.Ask reads it: a lookup key, and how wide the
// question is.
type Ask struct {
	Key filter.Key
	// AnyCode is set for icmp and icmpv6 when the query gave no code:
	// the question is whether some code of Key.Type passes (Key.Code is
	// 0 and unused). A missing code is read as "any code" rather than
	// refused, because most rules and most questions are about a type
	// ("is ping allowed?"); the answer then names the rule that admits
	// the lowest code that passes and, in Codes, every code that does, so
	// a rule "icmp 3/4" is never hidden behind an assumed code 0.
	AnyCode bool
	// Iface names the interface of the connection ("": one no group
	// names); it picks the groups attached to it.
	Iface string
	// AllProtos is set for protocol all: the question is whether a
	// connection of any protocol, to any port, from (or to) the peer
	// passes, that is whether every one does (Key.Proto is 0 and
	// unused). That holds when rules of protocol all (or a group's
	// default egress) cover the peer.
	AllProtos bool
}

// queryError is an error in a query. Missing is set when something was
// left out rather than given wrong.
type queryError struct {
	msg     string
	missing bool
}

func (e *queryError) Error() string { return e.msg }

func missing(format string, args ...any) error {
	return &queryError{msg: fmt.Sprintf(format, args...), missing: true}
}

// IsMissing reports whether a query's error says that something was left
// out (a usage error for fwctl), not that a value is bad.
func IsMissing(err error) bool {
	var qe *queryError
	return errors.As(err, &qe) && qe.missing
}

// allCodes is Codes when every code of the type passes.
const allCodes = "0-255"

// answer answers a: the host's own accepts first (Decide never sees
// those packets), then the table.
func answer(t *filter.Table, a Ask) (CheckResult, filter.Result) {
	k := a.Key
	typ := k.Type
	if a.AllProtos {
		typ = 0
	}
	if h := kernel.Admits(k.Peer, k.Proto, typ); h != kernel.AdmitNone && (!a.AllProtos || h == kernel.AdmitLoopback) {
		return CheckResult{Verdict: "accept", Reason: h.String()}, filter.Result{Dir: k.Dir, Group: -1, Rule: filter.NoRule}
	}
	if a.Iface != "" && t.HasInterfaces() {
		t, k.Ifindex = t.On(a.Iface), filter.OnIfindex
	}
	var v filter.Result
	var codes string
	switch {
	case a.AllProtos:
		v = matchEvery(t, k)
	case a.AnyCode:
		v, codes = matchAnyCode(t, k)
	default:
		v = t.Match(k)
	}
	res := CheckResult{Verdict: "drop", Reason: ReasonNoMatch}
	if v.IsFailsafe() {
		res.Verdict, res.Reason = "accept", ReasonFailsafe
		return res, v
	}
	if v.ACL != 0 {
		res.ACL, res.Reason = int(v.ACL), ReasonACLDeny
		if v.Accepted() {
			res.Verdict, res.Reason, res.Codes = "accept", ReasonACLAllow, codes
		}
		return res, v
	}
	if v.Accepted() {
		res.Verdict, res.Group, res.Reason, res.Codes = "accept", t.GroupName(v.Group), ReasonRule, codes
		if v.Rule == filter.NoRule {
			res.Reason = ReasonDefaultEgress
		} else {
			rule := v.Rule
			res.Rule = &rule
			if r := t.Rule(v); r != nil {
				res.ID = r.ID
			}
		}
	}
	return res, v
}

// matchAnyCode asks about every code of k.Type: the result for the lowest
// code that passes (or a drop) and the codes that pass.
func matchAnyCode(t *filter.Table, k filter.Key) (filter.Result, string) {
	var first filter.Result
	var pass [256]bool
	found := false
	for c := range 256 {
		k.Code = uint8(c)
		v := t.Match(k)
		if v.Accepted() {
			pass[c] = true
			if !found {
				first, found = v, true
			}
		}
	}
	if !found {
		k.Code = 0
		return t.Match(k), ""
	}
	return first, codeRanges(&pass)
}

// codeRanges writes the codes set in pass as "0-255", "4", "0,2-5".
func codeRanges(pass *[256]bool) string {
	var b []byte
	for c := 0; c < 256; {
		if !pass[c] {
			c++
			continue
		}
		end := c
		for end+1 < 256 && pass[end+1] {
			end++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(c), 10)
		if end > c {
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(end), 10)
		}
		c = end + 1
	}
	return string(b)
}

// matchEvery answers protocol all: accept when every protocol, and every
// port or icmp type and code of those that have them, passes for k's
// peer. The result names the rule that accepts protocol 255 (reserved by
// IANA, so in practice the first rule of protocol all that covers the
// peer, or a group's default egress); a drop when anything does not pass.
func matchEvery(t *filter.Table, k filter.Key) filter.Result {
	drop := filter.Result{Dir: k.Dir, Group: -1, Rule: filter.NoRule}
	for p := range 256 {
		k.Proto = ipproto.Proto(p)
		k.Port, k.Type, k.Code = 0, 0, 0
		switch k.Proto {
		case ipproto.TCP, ipproto.UDP:
			for port := range 65536 {
				k.Port = uint16(port)
				if !t.Match(k).Accepted() {
					return drop
				}
			}
		case ipproto.ICMP, ipproto.ICMPv6:
			if (k.Proto == ipproto.ICMP) != k.Peer.Is4() {
				// icmp in IPv6, icmpv6 in IPv4: decoded without a type.
				if !t.Match(k).Accepted() {
					return drop
				}
				continue
			}
			for x := range 65536 {
				k.Type, k.Code = uint8(x>>8), uint8(x)
				if !t.Match(k).Accepted() {
					return drop
				}
			}
		default:
			if !t.Match(k).Accepted() {
				return drop
			}
		}
	}
	k.Proto, k.Port, k.Type, k.Code = 255, 0, 0, 0
	return t.Match(k)
}

// hostDescription is the verdict in words for an accept by the host.
func hostDescription(k filter.Key) string {
	if kernel.Loopback(k.Peer) {
		lo := "-i lo"
		if k.Dir == direction.Egress {
			lo = "-o lo"
		}
		return "accepted by the host before fwd sees it: loopback traffic is never filtered (" + lo + ")"
	}
	return "accepted by the host before fwd sees it: IPv6 neighbour discovery and multicast listener discovery are never filtered"
}
