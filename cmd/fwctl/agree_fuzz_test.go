package main

import (
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// apiRule converts a spec as the API does on an add (control's
// RuleSpec.Rule, then the peers resolved against the rules file, here one
// with no prefix lists).
func apiRule(s control.RuleSpec) (rules.Rule, error) {
	r, _, err := s.Rule()
	if err != nil {
		return r, err
	}
	r.Prefixes, err = (&rules.File{}).ResolvePeers(r.Peers)
	return r, err
}

// FuzzRuleAgreement: fwctl's ufw grammar and the API take the same
// protocol, port and peer; they must accept and refuse the same ones, and
// what both accept must allow the same traffic. The inputs are limited to
// what both take in the same form: one port or range of digits (lists and
// service names are ufw's only), a peer that is an address, a CIDR or
// any/any4/any6 (prefix-list names are resolved by the daemon against its
// file), words without spaces that are not ufw keywords.
func FuzzRuleAgreement(f *testing.F) {
	f.Add("tcp", "443", "any")
	f.Add("udp", "1000:2000", "198.51.100.0/24")
	f.Add("tcp", "22", "2001:db8::/32")
	f.Add("icmp", "8", "any4")
	f.Add("6", "80-79", "1.2.3.4/33")
	f.Add("all", "0", "::ffff:1.2.3.4")
	f.Fuzz(func(t *testing.T, proto, port, peer string) {
		for _, w := range []string{proto, port, peer} {
			if w == "" || len(strings.Fields(w)) != 1 || w != strings.TrimSpace(w) || isKeyword(w) || w == "comment" {
				return
			}
		}
		if strings.Trim(port, "0123456789:-") != "" || !strings.ContainsAny(peer, "./:") && peer != "any" && peer != "any4" && peer != "any6" {
			return
		}
		line := "proto " + proto + " from " + peer + " to any port " + port
		specs, ufwErr := parseRuleWords(strings.Fields(line))
		api, apiErr := apiRule(control.RuleSpec{Dir: "in", Proto: proto, Ports: []string{port}, Peers: []string{peer}})
		if (ufwErr == nil) != (apiErr == nil) {
			t.Fatalf("%q: fwctl says %v, the API says %v", line, ufwErr, apiErr)
		}
		if ufwErr != nil {
			return
		}
		if len(specs) != 1 {
			t.Fatalf("%q: %d rules from one protocol", line, len(specs))
		}
		ufw, err := apiRule(specs[0])
		if err != nil {
			t.Fatalf("%q: fwctl's rule %+v refused by the API: %v", line, specs[0], err)
		}
		if !ufw.SameTraffic(&api) {
			t.Fatalf("%q: fwctl means %s, the API %s", line, ufw.Format(direction.Ingress), api.Format(direction.Ingress))
		}
	})
}
