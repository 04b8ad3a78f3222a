package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// ACL edits: fwctl deny, insert N, delete deny and delete acl N. They
// go through the same edit step as rule edits (read, change the text,
// decode, compile, write, swap), and each of them also removes the
// entries that have expired, so that bans that lifted themselves do not
// pile up in the file.

// ACLNumberStep is the gap between the numbers an entry without a
// number gets: the first is 100, the next one above the highest is the
// next multiple of 100 (room to insert entries between them, as AWS's
// examples number theirs).
const ACLNumberStep = 100

// MaxExpire bounds an entry's expiry duration.
const MaxExpire = 10 * 365 * 24 * time.Hour

// ACLSpec is an ACL entry's action and traffic.
type ACLSpec struct {
	Action string `json:"action"` // allow or deny
	RuleSpec
}

// ACLAddRequest asks to add one ACL entry (the body of POST /v1/acl).
type ACLAddRequest struct {
	// Number is the entry's number; 0 means the next free one (see
	// NextACLNumber).
	Number int `json:"number,omitempty"`
	ACLSpec
	// Expire, a duration such as "10m" or "600s", makes the entry lift
	// itself that long after the edit (written as expires: in the file).
	Expire string `json:"expire,omitempty"`
}

// ACLDeleteRequest asks to delete ACL entries by number (of direction
// Dir) or every entry with exactly a spec's action and traffic (the body
// of DELETE /v1/acl).
type ACLDeleteRequest struct {
	Dir     string    `json:"dir,omitempty"` // of Numbers: in (the default) or out
	Numbers []int     `json:"numbers,omitempty"`
	Entries []ACLSpec `json:"entries,omitempty"`
}

// aclSpec is a checked ACLSpec.
type aclSpec struct {
	action rules.Action
	rule   rules.Rule
	dir    direction.Dir
}

func (s ACLSpec) check() (aclSpec, error) {
	a, err := rules.ParseAction(s.Action)
	if err != nil {
		return aclSpec{}, err
	}
	r, dir, err := s.Rule()
	if err != nil {
		return aclSpec{}, err
	}
	return aclSpec{a, r, dir}, nil
}

// AddACL adds one ACL entry, writes the file and swaps the new table
// in. An entry of the same direction, action and traffic that is there
// already is not added again (it is listed in ACLSkipped). A number
// that is taken is refused (CodeNumberTaken), naming the free numbers
// around it: entries are never renumbered, since a number is how
// status, delete acl N and scripts name an entry. After a deny entry
// went live, the established connections it matches are cut (Revoke).
func (s *Service) AddACL(ctx context.Context, req ACLAddRequest, dryRun bool) (EditResult, error) {
	sp, err := req.check()
	if err != nil {
		return EditResult{DryRun: dryRun}, badRequest(err.Error())
	}
	if req.Number != 0 && (req.Number < rules.MinACLNumber || req.Number > rules.MaxACLNumber) {
		return EditResult{DryRun: dryRun}, badRequest(fmt.Sprintf("acl entry number %d out of range: expected %d-%d", req.Number, rules.MinACLNumber, rules.MaxACLNumber))
	}
	var expire time.Duration
	if req.Expire != "" {
		d, err := time.ParseDuration(req.Expire)
		if err != nil || d <= 0 || d > MaxExpire {
			return EditResult{DryRun: dryRun}, badRequest(fmt.Sprintf("bad expire %q: expected a duration such as 10m, 600s or 24h, more than 0 and at most %s", req.Expire, MaxExpire))
		}
		expire = d
	}
	var added rules.ACLEntry
	res, err := s.edit(ctx, dryRun, func(cur *rules.File, data []byte, res *EditResult) ([]byte, *Error) {
		now := s.now()
		e := rules.ACLEntry{Number: req.Number, Action: sp.action, Proto: sp.rule.Proto, Ports: sp.rule.Ports,
			ICMP: sp.rule.ICMP, Peers: sp.rule.Peers, Description: sp.rule.Description}
		prefixes, err := cur.ResolvePeers(e.Peers)
		if err != nil {
			return nil, badRequest(err.Error())
		}
		e.Prefixes = prefixes
		if expire > 0 {
			e.Expires = ceilSecond(now.Add(expire))
		}
		if i := sameACLEntry(cur, sp.dir, &e, now); i >= 0 {
			res.ACLSkipped = append(res.ACLSkipped, aclInfo(&cur.ACL.List(sp.dir)[i], sp.dir, now, nil))
			return nil, nil
		}
		next, pruned, e2 := s.pruneExpired(cur, data, now, [2][]int{}, res)
		if e2 != nil {
			return nil, e2
		}
		if e.Number == 0 {
			n, ok := NextACLNumber(&pruned.ACL, sp.dir, e.Action)
			if !ok {
				return nil, &Error{Code: CodeNumberTaken, Message: fmt.Sprintf("no free acl %s number after the last entry (%d): give one (fwctl insert N ...), or delete entries", sp.dir.Key(), rules.MaxACLNumber)}
			}
			e.Number = n
		} else if pruned.ACL.Find(sp.dir, e.Number) >= 0 {
			return nil, numberTaken(&pruned.ACL, sp.dir, e.Number)
		}
		out, err := rules.AddACLEntry(s.cfg.Path, next, sp.dir, e, s.cfg.Rules)
		if err != nil {
			return nil, rulesError(s.cfg.Path, "the edit would make the rules file invalid, nothing changed", err)
		}
		added = e
		res.ACLAdded = append(res.ACLAdded, aclInfo(&e, sp.dir, now, nil))
		return out, nil
	})
	if err != nil || dryRun || !res.Changed || added.Action != rules.Deny || len(res.ACLAdded) == 0 || s.cfg.Revoke == nil {
		return res, err
	}
	n, rerr := s.cfg.Revoke(ctx, sp.dir, added)
	res.Revoked = n
	if rerr != nil {
		s.log.Warn("cut the connections of a new deny entry", "entry", added.Format(sp.dir), "err", rerr)
		res.Notes = append(res.Notes, fmt.Sprintf("the entry is live, but its established connections could not all be cut: %v", rerr))
	} else if n > 0 {
		s.log.Info("cut established connections", "entry", added.Format(sp.dir), "connections", n)
	}
	return res, nil
}

// DeleteACL deletes ACL entries by number (as status shows them: the
// live entries, so refused with CodeStaleNumbers when the file changed
// since they were loaded) or every entry with exactly a spec's action
// and traffic, expired ones included.
func (s *Service) DeleteACL(ctx context.Context, req ACLDeleteRequest, dryRun bool) (EditResult, error) {
	if len(req.Numbers) == 0 && len(req.Entries) == 0 {
		return EditResult{DryRun: dryRun}, badRequest("nothing to delete: give acl entry numbers or entries")
	}
	dir := direction.Ingress
	if req.Dir != "" {
		d, err := direction.Parse(req.Dir)
		if err != nil {
			return EditResult{DryRun: dryRun}, badRequest(err.Error())
		}
		dir = d
	}
	for _, n := range req.Numbers {
		if n < rules.MinACLNumber || n > rules.MaxACLNumber {
			return EditResult{DryRun: dryRun}, badRequest(fmt.Sprintf("acl entry number %d out of range: expected %d-%d", n, rules.MinACLNumber, rules.MaxACLNumber))
		}
	}
	specs := make([]aclSpec, 0, len(req.Entries))
	for i, e := range req.Entries {
		sp, err := e.check()
		if err != nil {
			return EditResult{DryRun: dryRun}, badRequest(fmt.Sprintf("entry %d: %v", i+1, err))
		}
		specs = append(specs, sp)
	}
	return s.edit(ctx, dryRun, func(cur *rules.File, data []byte, res *EditResult) ([]byte, *Error) {
		now := s.now()
		var drop [2][]int
		if len(req.Numbers) > 0 {
			if liveHash(s.cfg.Target.Table()) != cur.Hash {
				return nil, &Error{Code: CodeStaleNumbers,
					Message: fmt.Sprintf("%s changed since the running rules were loaded, so acl entry numbers may not mean what fwctl status showed: run fwctl reload (then status) first, or delete by entry (fwctl delete deny ...)", s.cfg.Path)}
			}
			for _, n := range req.Numbers {
				if cur.ACL.Find(dir, n) < 0 {
					return nil, &Error{Code: CodeNotFound, Message: fmt.Sprintf("no acl %s entry %d: %s", dir.Key(), n, numbersText(&cur.ACL, dir))}
				}
				if !slices.Contains(drop[dir], n) {
					drop[dir] = append(drop[dir], n)
				}
			}
		}
		var missing []string
		for _, sp := range specs {
			prefixes, err := cur.ResolvePeers(sp.rule.Peers)
			if err != nil {
				return nil, badRequest(err.Error())
			}
			r := sp.rule
			r.Prefixes = prefixes
			found := false
			for _, e := range cur.ACL.List(sp.dir) {
				if er := e.Rule(); e.Action == sp.action && er.SameTraffic(&r) {
					found = true
					if !slices.Contains(drop[sp.dir], e.Number) {
						drop[sp.dir] = append(drop[sp.dir], e.Number)
					}
				}
			}
			if !found {
				missing = append(missing, sp.dir.Key()+" "+sp.action.String()+" "+r.Format(sp.dir))
			}
		}
		if len(drop[0])+len(drop[1]) == 0 {
			return nil, &Error{Code: CodeNotFound,
				Message: fmt.Sprintf("no acl entry is exactly %s (fwctl status lists them)", strings.Join(missing, " or "))}
		}
		for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
			list := cur.ACL.List(d)
			for _, i := range cur.ACL.Sorted(d) {
				if slices.Contains(drop[d], list[i].Number) {
					res.ACLDeleted = append(res.ACLDeleted, aclInfo(&list[i], d, now, nil))
				}
			}
		}
		next, _, e := s.pruneExpired(cur, data, now, drop, res)
		return next, e
	})
}

// pruneExpired deletes from data the entries of cur that have expired
// at now, and those numbered in also (per direction), listing the
// expired ones in res.ACLExpired. It returns the new file and its
// decoded rules (cur and data when there is nothing to delete).
func (s *Service) pruneExpired(cur *rules.File, data []byte, now time.Time, also [2][]int, res *EditResult) ([]byte, *rules.File, *Error) {
	next, f := data, cur
	for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
		nums := slices.Clone(also[d])
		list := cur.ACL.List(d)
		for _, i := range cur.ACL.Sorted(d) {
			e := &list[i]
			if e.Expired(now) && !slices.Contains(nums, e.Number) {
				nums = append(nums, e.Number)
				res.ACLExpired = append(res.ACLExpired, aclInfo(e, d, now, nil))
			}
		}
		if len(nums) == 0 {
			continue
		}
		out, err := rules.DeleteACLEntries(s.cfg.Path, next, d, nums, s.cfg.Rules)
		if err != nil {
			return nil, nil, rulesError(s.cfg.Path, "the edit would make the rules file invalid, nothing changed", err)
		}
		next = out
	}
	if len(next) == len(data) && string(next) == string(data) {
		return next, f, nil
	}
	f, err := rules.Parse(s.cfg.Path, next, s.cfg.Rules)
	if err != nil {
		return nil, nil, rulesError(s.cfg.Path, "the edit would make the rules file invalid, nothing changed", err)
	}
	return next, f, nil
}

// NextACLNumber is the number an entry of action act added to
// direction d without one gets: the first multiple of ACLNumberStep
// above every entry (100 for the first entry), so that it comes last,
// as an appended ufw rule does. When that is past rules.MaxACLNumber,
// it is the lowest free number above every entry of the other action:
// entries of one action can be reordered among themselves without
// changing any verdict, so the new entry decides exactly as it would
// last. false when there is no such number.
func NextACLNumber(a *rules.ACL, d direction.Dir, act rules.Action) (int, bool) {
	hi, otherHi := 0, 0
	for _, e := range a.List(d) {
		hi = max(hi, e.Number)
		if e.Action != act {
			otherHi = max(otherHi, e.Number)
		}
	}
	if n := (hi/ACLNumberStep + 1) * ACLNumberStep; n <= rules.MaxACLNumber {
		return n, true
	}
	for n := otherHi + 1; n <= rules.MaxACLNumber; n++ {
		if a.Find(d, n) < 0 {
			return n, true
		}
	}
	return 0, false
}

// numberTaken refuses number n of direction d, naming the entry that
// has it and the free numbers nearest to it.
func numberTaken(a *rules.ACL, d direction.Dir, n int) *Error {
	e := &a.List(d)[a.Find(d, n)]
	var free []string
	for m := n - 1; m >= rules.MinACLNumber; m-- {
		if a.Find(d, m) < 0 {
			free = append(free, strconv.Itoa(m))
			break
		}
	}
	for m := n + 1; m <= rules.MaxACLNumber; m++ {
		if a.Find(d, m) < 0 {
			free = append(free, strconv.Itoa(m))
			break
		}
	}
	return &Error{Code: CodeNumberTaken,
		Message: fmt.Sprintf("acl %s entry %d exists (%s): numbers are not shifted; free numbers nearest to it: %s", d.Key(), n, e.Format(d), strings.Join(free, " and "))}
}

// numbersText lists a direction's entry numbers for a not-found error.
func numbersText(a *rules.ACL, d direction.Dir) string {
	list := a.List(d)
	if len(list) == 0 {
		return "there are no " + d.Key() + " entries"
	}
	var nums []string
	for _, i := range a.Sorted(d) {
		nums = append(nums, strconv.Itoa(list[i].Number))
	}
	return "the " + d.Key() + " entries are " + strings.Join(nums, ", ") + " (fwctl status)"
}

// sameACLEntry returns the index in cur's list of direction d of a live
// (not expired) entry with e's action and traffic, or -1.
func sameACLEntry(cur *rules.File, d direction.Dir, e *rules.ACLEntry, now time.Time) int {
	r := e.Rule()
	return slices.IndexFunc(cur.ACL.List(d), func(o rules.ACLEntry) bool {
		or := o.Rule()
		return o.Action == e.Action && !o.Expired(now) && or.SameTraffic(&r)
	})
}

// ceilSecond rounds t up to a whole second, as RFC 3339 in the file
// keeps it: a ban never lifts before its time.
func ceilSecond(t time.Time) time.Time {
	if tr := t.Truncate(time.Second); !tr.Equal(t) {
		return tr.Add(time.Second)
	}
	return t
}
