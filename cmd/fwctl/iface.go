package main

import (
	"slices"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/replay"

	"github.com/fwd-project/fwd/internal/rules"
)

// cutOn takes ufw's interface clause out of a rule's words: "on IFACE"
// right after the direction (allow in on eth1 to any port 5432 proto
// tcp; allow out on eth0 53/udp), or first when the direction is left
// out (in). It returns the interface ("" without the clause) and the
// words without it.
func cutOn(words []string) (string, []string, error) {
	i := 0
	if len(words) > 0 && (words[0] == "in" || words[0] == "out") {
		i = 1
	}
	if i >= len(words) || words[i] != "on" {
		return "", words, nil
	}
	if i+1 >= len(words) {
		return "", nil, usageErr("\"on\" needs an interface: on eth1")
	}
	iface := words[i+1]
	if err := rules.CheckIfacePattern(iface); err != nil {
		return "", nil, rejectErr("bad interface: %v", err)
	}
	rest := append(append([]string(nil), words[:i]...), words[i+2:]...)
	return iface, rest, nil
}

// cutQueryOn takes "on IFACE" out of the words of a check query,
// wherever it is (check tcp 198.51.100.7 5432 on eth1, check in on eth1
// tcp ...). The name is checked where the query is read (Query.Ask).
func cutQueryOn(args []string) (string, []string, error) {
	i := slices.Index(args, "on")
	if i < 0 {
		return "", args, nil
	}
	if i+1 >= len(args) {
		return "", nil, usageErr("\"on\" needs an interface: on eth1")
	}
	return args[i+1], append(slices.Clone(args[:i]), args[i+2:]...), nil
}

// ifaceMatcher answers as a table does for packets on one interface
// (replay --iface): t is a table from filter.Table.On.
type ifaceMatcher struct{ t *filter.Table }

func (m ifaceMatcher) Match(k filter.Key) filter.Result {
	k.Ifindex = filter.OnIfindex
	return m.t.Match(k)
}

// onIface makes the matchers of a replay answer for interface name
// ("": an interface no group is attached to, as without --iface).
func onIface(s *replaySetup, name string) replay.Matcher {
	if name == "" {
		return s.table
	}
	if d, ok := s.Diff.(*filter.Table); ok {
		s.Diff = ifaceMatcher{d.On(name)}
	}
	return ifaceMatcher{s.table.On(name)}
}
