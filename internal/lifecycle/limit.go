package lifecycle

import (
	"fmt"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// LimitSpec is a rule's limit as an edit takes it: conns new
// connections per window, the window a duration ("30s").
type LimitSpec struct {
	Conns int    `json:"conns"`
	Per   string `json:"per"`
}

func limitSpecOf(l *rules.Limit) *LimitSpec {
	if l == nil {
		return nil
	}
	return &LimitSpec{Conns: l.Conns, Per: rules.FormatLimitPer(l.Per)}
}

// limit checks the spec as the rules file would.
func (s *LimitSpec) limit(dir direction.Dir) (*rules.Limit, error) {
	if s == nil {
		return nil, nil
	}
	if dir == direction.Egress {
		return nil, fmt.Errorf("limit on an egress rule: limit brakes peers that connect to the host, only ingress rules take it")
	}
	per, err := rules.ParseLimitPer(s.Per)
	if err != nil {
		return nil, err
	}
	l := &rules.Limit{Conns: s.Conns, Per: per}
	if err := rules.CheckLimit(*l); err != nil {
		return nil, err
	}
	return l, nil
}

// sameLimit refuses an added rule whose traffic the rule at ref already
// allows with another limit (or none): skipping it would leave the old
// limit in force, and adding it would be a second rule for the same
// traffic, where the one without a limit wins.
func sameLimit(cur *rules.File, ref rules.RuleRef, r *rules.Rule) *Error {
	old := cur.RuleAt(ref)
	if (old.Limit == nil) == (r.Limit == nil) && (old.Limit == nil || *old.Limit == *r.Limit) {
		return nil
	}
	has := "no limit"
	if old.Limit != nil {
		has = "limit " + old.Limit.String()
	}
	return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("rule %d (%s, group %s) allows this traffic already, with %s: delete it first (fwctl delete %s), then add the rule again",
		NumberOf(cur, ref), old.ID, cur.Groups[ref.Group].Name, has, old.ID)}
}
