package classbench

import (
	"net/netip"
	"strings"
	"testing"
)

// TestRules: Rules gives the rules ToRulesYAML writes, in its order.
func TestRules(t *testing.T) {
	boxes, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{"tcp", "1550", netip.MustParsePrefix("198.18.1.0/24")},
		{"tcp", "1550", netip.MustParsePrefix("198.18.2.0/24")},
		{"udp", "53", netip.MustParsePrefix("198.18.3.0/24")},
		{"all", "", netip.MustParsePrefix("0.0.0.0/0")},
		{"tcp", "6000-6007", netip.MustParsePrefix("198.18.5.0/24")},
		{"udp", "6000-6007", netip.MustParsePrefix("198.18.5.0/24")},
		{"47", "", netip.MustParsePrefix("198.18.6.0/24")},
		{"tcp", "1-1023", netip.MustParsePrefix("198.18.7.0/24")},
	}
	got := Rules(boxes)
	if len(got) != len(want) {
		t.Fatalf("%d rules %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("rule %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
