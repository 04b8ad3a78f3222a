package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyntaxErrorPositions reads each broken file in testdata/syntax and
// checks that its one error names the place where the text goes wrong.
// Before the syntax scanner, yaml.v3's position was printed (noted beside
// each case): the line where the enclosing collection started, 1:1, or the
// right line at column 1.
func TestSyntaxErrorPositions(t *testing.T) {
	tests := []struct {
		file string
		want string // line:col
		msg  string // part of the message
	}{
		{"unclosed-flow-list", "5:45", `found '}' where ']' was expected to close the '[' at 5:29`}, // was 4:1
		{"unclosed-flow-multiline", "6:29", `'[' is not closed: expected ']' before line 7`},        // was 5:1
		{"misindented-key", "7:8", "did not find expected '-' indicator"},                           // was 4:1
		{"misindented-entry", "8:6", "did not find expected key"},                                   // was 2:1
		{"mapping-in-value", "9:18", "mapping values are not allowed in this context"},              // was 9:1
		{"tab-indent", "6:1", "tab in indentation"},                                                 // was 5:1
		{"nul-byte", "6:29", "NUL byte"},                                                            // was 1:1
		{"bad-utf8", "6:49", "invalid UTF-8 byte 0xe9"},                                             // was 1:1
		{"binary-garbage", "4:18", "invalid UTF-8 byte 0x89"},                                       // was 1:1
		{"unknown-alias", "6:39", "unknown alias *nope: no anchor &nope is defined before it"},      // was 1:1
		{"unterminated-single", "6:46", "unterminated string: the ' here has no closing '"},         // was 6:1
		{"unterminated-double", "6:46", `unterminated string: the " here has no closing "`},         // was 6:1
		{"unterminated-double-eof", "8:22", `unterminated string: the " here has no closing "`},     // was 8:1
		{"stray-bracket", "6:31", `found ']' where '}' was expected to close the '{' at 6:9`},       // was 5:1
		{"stray-bracket-block", "6:3", `']' closes nothing`},                                        // was 2:1
		{"tricky-then-misindented", "19:10", "mapping values are not allowed in this context"},      // was 18:1
	}
	files, err := filepath.Glob("testdata/syntax/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%d files in testdata/syntax, %d cases: give each file a case", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/syntax", tt.file+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse("s.yaml", data, Options{})
			var list ErrorList
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
			e := list[0]
			if got := fmt.Sprintf("%d:%d", e.Pos.Line, e.Pos.Col); got != tt.want {
				t.Errorf("position %s, want %s (%v)", got, tt.want, e)
			}
			if want := "YAML syntax: "; !strings.HasPrefix(e.Msg, want) || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("message %q, want %q and %q", e.Msg, want, tt.msg)
			}
		})
	}
}

func TestSyntaxErrorInline(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"alias before its anchor", "version: 1\ngroups:\n  - name: *a\n  - name: &a x\n", "s.yaml:3:11: YAML syntax: unknown alias *a"},
		{"unclosed at the end", "version: 1\ngroups: [{name: a}\n", "s.yaml:2:9: YAML syntax: '[' is not closed: expected ']' before the end of the file"},
		{"control character", "version: 1\ngroups:\n  - name: a\x07b\n", "s.yaml:3:12: YAML syntax: control character U+0007"},
		{"bad byte after wide characters", "version: 1\ngroups:\n  - name: \u00e9\u00e9\xff\n", "s.yaml:3:13: YAML syntax: invalid UTF-8 byte 0xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tt.src), Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got %v, want %s...", err, tt.want)
			}
		})
	}
}

func TestLongValuesClipped(t *testing.T) {
	passwd := strings.Repeat("root:x:0:0:root:/root:/bin/bash ", 100)
	long := strings.Repeat("p", 500)
	tests := []struct {
		name, src, want string
	}{
		{"top-level scalar", passwd, `s.yaml:1:1: expected a mapping with keys version, prefix_lists, acl and groups, got "` + passwd[:60] + `…"`},
		{"long port", rulesOf("      - {proto: tcp, ports: " + long + ", from: [any]}"), `s.yaml:5:29: bad port "` + strings.Repeat("p", 60) + `…": expected`},
		{"long proto", rulesOf("      - {proto: " + long + ", from: [any]}"), `s.yaml:5:17: bad protocol "` + strings.Repeat("p", 60) + `…": expected`},
		{"long peer", rulesOf("      - {proto: tcp, from: [" + long + "]}"), `s.yaml:5:29: undefined prefix list "` + strings.Repeat("p", 60) + `…": define`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tt.src), Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || len(err.Error()) > 300 {
				t.Errorf("got %v, want %s...", err, tt.want)
			}
		})
	}
}

func TestErrorsCapped(t *testing.T) {
	lines := make([]string, 1000)
	for i := range lines {
		lines[i] = "      - {proto: tcp, ports: http, from: [any]}"
	}
	_, err := Parse("s.yaml", []byte(rulesOf(lines...)), Options{})
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	if len(list) != maxErrors+1 || list.Count() != 1000 {
		t.Fatalf("%d entries counting %d errors, want %d counting 1000", len(list), list.Count(), maxErrors+1)
	}
	if got, want := list[maxErrors].Error(), "s.yaml:105:29: and 900 more errors"; got != want {
		t.Errorf("last entry %q, want %q", got, want)
	}
	if n := strings.Count(err.Error(), "\n"); n != maxErrors {
		t.Errorf("message has %d lines, want %d", n+1, maxErrors+1)
	}
}
