package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulesREADMEErrorExample (issue 18): the error example of
// rules/README.md is what fwctl validate says about the bad.yaml shown
// above it.
func TestRulesREADMEErrorExample(t *testing.T) {
	doc, err := os.ReadFile("../../rules/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "For this `bad.yaml`:\n\n```yaml\n")
	if !ok {
		t.Fatal("rules/README.md: no bad.yaml example")
	}
	file, rest, _ := strings.Cut(rest, "```\n")
	_, rest, ok = strings.Cut(rest, "```\n$ fwctl validate bad.yaml\n")
	if !ok {
		t.Fatal("rules/README.md: no fwctl validate bad.yaml after the file")
	}
	want, _, _ := strings.Cut(rest, "```\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	code, stdout, stderr := fwctl(t, "", "validate", "bad.yaml")
	if code != exitRejected || stdout != "" || stderr != want {
		t.Errorf("fwctl validate bad.yaml: exit %d, stdout %q, stderr:\n%s\nrules/README.md says:\n%s", code, stdout, stderr, want)
	}
}
