package control

import (
	"encoding/json"
	"testing"
)

func i32(n int32) *int32 { return &n }

// TestCheckResultJSON pins the bytes of the check contract (DESIGN.md,
// "Offline contracts"): group and rule on an accept only, "rule":null for
// an accept by the implicit egress default, errors alone, the rule's ID
// last and only beside a rule.
func TestCheckResultJSON(t *testing.T) {
	tests := []struct {
		name string
		res  CheckResult
		want string
	}{
		{"accept", CheckResult{Verdict: "accept", Group: "web", Rule: i32(0)}, `{"verdict":"accept","group":"web","rule":0}`},
		{"drop", CheckResult{Verdict: "drop"}, `{"verdict":"drop"}`},
		{"default egress", CheckResult{Verdict: "accept", Group: "web"}, `{"verdict":"accept","group":"web","rule":null}`},
		{"error", CheckResult{Error: `line 7: bad address "1.2.3"`}, `{"error":"line 7: bad address \"1.2.3\""}`},
		{"full accept", CheckResult{Verdict: "accept", Group: "web", Rule: i32(2), Number: 3, Description: "accepted", Hash: "ab"},
			`{"verdict":"accept","group":"web","rule":2,"number":3,"description":"accepted","hash":"ab"}`},
		{"full drop", CheckResult{Verdict: "drop", Description: "dropped: no ingress rule allows it", Hash: "ab"},
			`{"verdict":"drop","description":"dropped: no ingress rule allows it","hash":"ab"}`},
		{"loopback", CheckResult{Verdict: "accept", Reason: ReasonLoopback}, `{"verdict":"accept","reason":"loopback"}`},
		{"neighbour discovery", CheckResult{Verdict: "accept", Reason: ReasonNeighbourDiscovery, Description: "d"}, `{"verdict":"accept","description":"d","reason":"neighbour-discovery"}`},
		{"accept with reason", CheckResult{Verdict: "accept", Group: "web", Rule: i32(0), Reason: ReasonRule, Codes: "4"}, `{"verdict":"accept","group":"web","rule":0,"reason":"rule","codes":"4"}`},
		{"drop with reason", CheckResult{Verdict: "drop", Reason: ReasonNoMatch}, `{"verdict":"drop","reason":"no-match"}`},
		{"short of full", CheckResult{Verdict: "accept", Group: "web", Rule: i32(2), Number: 3, Description: "accepted", Hash: "ab"}.Short(),
			`{"verdict":"accept","group":"web","rule":2}`},
		{"accept with ID", CheckResult{Verdict: "accept", Group: "web", Rule: i32(0), ID: "sgr-cd50c0891d1f"}, `{"verdict":"accept","group":"web","rule":0,"id":"sgr-cd50c0891d1f"}`},
		{"full accept with ID", CheckResult{Verdict: "accept", Group: "web", Rule: i32(2), Number: 3, Description: "accepted", Hash: "ab", ID: "sgr-cd50c0891d1f"},
			`{"verdict":"accept","group":"web","rule":2,"number":3,"description":"accepted","hash":"ab","id":"sgr-cd50c0891d1f"}`},
		{"short keeps the ID", CheckResult{Verdict: "accept", Group: "web", Rule: i32(2), Number: 3, Hash: "ab", ID: "sgr-cd50c0891d1f"}.Short(),
			`{"verdict":"accept","group":"web","rule":2,"id":"sgr-cd50c0891d1f"}`},
		{"no ID without a rule", CheckResult{Verdict: "accept", Group: "web", ID: "sgr-cd50c0891d1f"}, `{"verdict":"accept","group":"web","rule":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.res)
			if err != nil || string(b) != tt.want {
				t.Fatalf("got %s, %v\nwant %s", b, err, tt.want)
			}
			var back CheckResult
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if c, _ := json.Marshal(back); string(c) != tt.want {
				t.Errorf("round trip: %s", c)
			}
		})
	}
}
