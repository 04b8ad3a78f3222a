package rules

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckText (issue 16): names and descriptions are counted in
// characters, and the characters that let text hide or reorder what
// status shows are refused.
func TestCheckText(t *testing.T) {
	tests := []struct {
		name, s string
		want    string // "" for accepted, else a part of the error
	}{
		{"plain", "nginx front door", ""},
		{"255 ascii", strings.Repeat("x", 255), ""},
		{"256 ascii", strings.Repeat("x", 256), "256 characters long: expected at most 255"},
		{"255 two-byte characters", strings.Repeat("é", 255), ""},
		{"255 emoji", strings.Repeat("🔥", 255), ""},
		{"256 two-byte characters", strings.Repeat("é", 256), "256 characters long"},
		{"right-to-left override", "web\u202eevil", "holds U+202E at character 4"},
		{"left-to-right embedding", "\u202aweb", "U+202A"},
		{"pop directional formatting", "web\u202c", "U+202C"},
		{"first strong isolate", "a\u2068b", "U+2068"},
		{"pop directional isolate", "a\u2069", "U+2069"},
		{"right-to-left mark", "a\u200fb", "U+200F"},
		{"left-to-right mark", "a\u200eb", "U+200E"},
		{"arabic letter mark", "a\u061cb", "U+061C"},
		{"line separator", "a\u2028b", "U+2028"},
		{"newline", "a\nb", "U+000A"},
		{"tab", "a\tb", "U+0009"},
		{"nul", "a\x00b", "U+0000"},
		{"delete", "a\x7fb", "U+007F"},
		{"c1 control", "a\u0085b", "U+0085"},
		{"bad utf-8", "a\xffb", "not valid UTF-8"},
		{"non-latin script", "веб-сервер", ""},
		{"hebrew", "שרת", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckText("description", tc.s)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("accepted, want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q, want it to hold %q", err, tc.want)
			}
		})
	}
}

// TestParseRefusesHiddenText: the rules file refuses the same text, at
// the position of the scalar that holds it.
func TestParseRefusesHiddenText(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"group name override", "version: 1\ngroups:\n  - name: \"web\\u202Eoff\"\n",
			"e.yaml:3:11: group name holds U+202E at character 4, a control or invisible formatting character: expected printable text"},
		{"group description isolate", "version: 1\ngroups:\n  - name: web\n    description: \"a\u2066b\"\n",
			"e.yaml:4:18: group description holds U+2066 at character 2, a control or invisible formatting character: expected printable text"},
		{"rule description mark", rulesOf("      - {proto: tcp, ports: 22, from: [any], description: \"ssh\u200f\"}"),
			"e.yaml:5:59: rule description holds U+200F at character 4, a control or invisible formatting character: expected printable text"},
		{"description 256 characters", rulesOf("      - {proto: tcp, ports: 22, from: [any], description: " + strings.Repeat("é", 256) + "}"),
			"e.yaml:5:59: rule description is 256 characters long: expected at most 255"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("e.yaml", []byte(tc.src), Options{})
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Parse: %v, want an ErrorList", err)
			}
			if got := list[0].Error(); got != tc.want {
				t.Errorf("first error:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
	// 255 characters of two bytes each (510 bytes) are within the limit.
	src := rulesOf("      - {proto: tcp, ports: 22, from: [any], description: " + strings.Repeat("é", 255) + "}")
	if _, err := Parse("e.yaml", []byte(src), Options{}); err != nil {
		t.Errorf("a description of 255 characters: %v", err)
	}
}
