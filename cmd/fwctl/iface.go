package main

import (
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
