package control

import (
	"encoding/json"
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
)

const askRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: icmp, icmp: {type: 3, code: 4}, from: [any]}
      - {proto: icmp, icmp: {type: 3, code: 1}, from: [any]}
      - {proto: icmp, icmp: {type: 8}, from: [any]}
      - {proto: all, from: [198.18.0.0/16]}
  - name: locked
    ingress: []
    egress:
      - {proto: udp, ports: 53, to: [any]}
`

func askTable(t *testing.T) *filter.Table {
	t.Helper()
	f, err := rules.Parse("rules.yaml", []byte(askRules), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := filter.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// TestCheckReasons: Check and Answer give the verdict the host gives and
// why, for every reason.
func TestCheckReasons(t *testing.T) {
	tab := askTable(t)
	tests := []struct {
		name    string
		q       Query
		verdict string
		reason  string
		group   string
		rule    int32 // -1: none
		codes   string
	}{
		{"rule", Query{Dir: "in", Proto: "tcp", Src: "203.0.113.7", Dport: ptr(443)}, "accept", ReasonRule, "web", 0, ""},
		{"no-match", Query{Dir: "in", Proto: "tcp", Src: "203.0.113.7", Dport: ptr(22)}, "drop", ReasonNoMatch, "", -1, ""},
		{"default egress", Query{Dir: "out", Proto: "tcp", Dst: "203.0.113.7", Dport: ptr(22)}, "accept", ReasonDefaultEgress, "web", -1, ""},
		{"loopback v4", Query{Dir: "in", Proto: "tcp", Src: "127.0.0.1", Dport: ptr(9999)}, "accept", ReasonLoopback, "", -1, ""},
		{"loopback 127/8", Query{Dir: "in", Proto: "udp", Src: "127.1.2.3", Dport: ptr(9999)}, "accept", ReasonLoopback, "", -1, ""},
		{"loopback v6 out", Query{Dir: "out", Proto: "tcp", Dst: "::1", Dport: ptr(5432)}, "accept", ReasonLoopback, "", -1, ""},
		{"not loopback ::2", Query{Dir: "in", Proto: "tcp", Src: "::2", Dport: ptr(5432)}, "drop", ReasonNoMatch, "", -1, ""},
		{"neighbour solicitation", Query{Dir: "in", Proto: "icmpv6", Src: "2001:db8::1", Type: ptr(135)}, "accept", ReasonNeighbourDiscovery, "", -1, ""},
		{"router advertisement", Query{Dir: "in", Proto: "icmpv6", Src: "fe80::1", Type: ptr(134), Code: ptr(0)}, "accept", ReasonNeighbourDiscovery, "", -1, ""},
		{"mld report out", Query{Dir: "out", Proto: "58", Dst: "ff02::16", Type: ptr(143)}, "accept", ReasonNeighbourDiscovery, "", -1, ""},
		{"icmpv6 echo", Query{Dir: "in", Proto: "icmpv6", Src: "2001:db8::1", Type: ptr(128)}, "drop", ReasonNoMatch, "", -1, ""},
		{"any code: some", Query{Dir: "in", Proto: "icmp", Src: "203.0.113.7", Type: ptr(3)}, "accept", ReasonRule, "web", 2, "1,4"},
		{"any code: all", Query{Dir: "in", Proto: "icmp", Src: "203.0.113.7", Type: ptr(8)}, "accept", ReasonRule, "web", 3, "0-255"},
		{"any code: none", Query{Dir: "in", Proto: "icmp", Src: "203.0.113.7", Type: ptr(5)}, "drop", ReasonNoMatch, "", -1, ""},
		{"code 0 given", Query{Dir: "in", Proto: "icmp", Src: "203.0.113.7", Type: ptr(3), Code: ptr(0)}, "drop", ReasonNoMatch, "", -1, ""},
		{"code 4 given", Query{Dir: "in", Proto: "icmp", Src: "203.0.113.7", Type: ptr(3), Code: ptr(4)}, "accept", ReasonRule, "web", 1, ""},
		{"all protocols", Query{Dir: "in", Proto: "all", Src: "198.18.9.9"}, "accept", ReasonRule, "web", 4, ""},
		{"all protocols, some only", Query{Dir: "in", Proto: "all", Src: "203.0.113.7"}, "drop", ReasonNoMatch, "", -1, ""},
		{"all protocols out, default egress", Query{Dir: "out", Proto: "all", Dst: "203.0.113.7"}, "accept", ReasonDefaultEgress, "web", -1, ""},
		{"all protocols, loopback", Query{Dir: "in", Proto: "all", Src: "::1"}, "accept", ReasonLoopback, "", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.q.Ask()
			if err != nil {
				t.Fatal(err)
			}
			full, short := Check(tab, a), Answer(tab, a)
			for _, res := range []CheckResult{full, short} {
				rule := int32(-1)
				if res.Rule != nil {
					rule = *res.Rule
				}
				if res.Verdict != tt.verdict || res.Reason != tt.reason || res.Group != tt.group || rule != tt.rule || res.Codes != tt.codes {
					t.Errorf("got %+v (rule %d), want %s %s group %q rule %d codes %q", res, rule, tt.verdict, tt.reason, tt.group, tt.rule, tt.codes)
				}
			}
			if a, b := mustMarshal(t, full.Short()), mustMarshal(t, short); a != b {
				t.Errorf("Check(...).Short() = %s, Answer = %s", a, b)
			}
			if full.Description == "" || full.Hash == "" {
				t.Errorf("Check left out the description or hash: %+v", full)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCodeRanges(t *testing.T) {
	set := func(cs ...int) *[256]bool {
		var p [256]bool
		for _, c := range cs {
			p[c] = true
		}
		return &p
	}
	var all [256]bool
	for i := range all {
		all[i] = true
	}
	tests := []struct {
		pass *[256]bool
		want string
	}{
		{set(4), "4"}, {set(0, 2, 3, 4, 5), "0,2-5"}, {&all, "0-255"}, {set(), ""}, {set(255), "255"}, {set(254, 255), "254-255"},
	}
	for _, tt := range tests {
		if got := codeRanges(tt.pass); got != tt.want {
			t.Errorf("codeRanges = %q, want %q", got, tt.want)
		}
	}
}
