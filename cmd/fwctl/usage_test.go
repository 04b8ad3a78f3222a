package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestMissingCommand (issue 16, bug 6): options without a command say
// that the command is missing, print the usage and exit with the usage
// code; --group is checked like a group name in the rules file.
func TestMissingCommand(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string // the first line of stderr
	}{
		{[]string{"--socket", "/run/x.sock"}, exitUsage, "fwctl: missing command after --socket /run/x.sock"},
		{[]string{"--socket=/run/x.sock"}, exitUsage, "fwctl: missing command after --socket=/run/x.sock"},
		{[]string{"--socket"}, exitUsage, "fwctl: missing command after --socket"},
		{[]string{"-o", "json", "--dry-run"}, exitUsage, "fwctl: missing command after -o json --dry-run"},
		{[]string{"--bogus"}, exitUsage, "fwctl: unknown option --bogus"},
		{[]string{"bogus"}, exitUsage, `fwctl: unknown command "bogus"`},
		{[]string{"allow", "--group", "web\u202e", "22/tcp"}, exitUsage, `fwctl allow: bad --group "web\u202e": group name holds U+202E at character 4, a control or invisible formatting character: expected printable text`},
		{[]string{"allow", "--group", strings.Repeat("g", 256), "22/tcp"}, exitUsage, "group name is 256 characters long: expected at most 255"},
		{[]string{"allow", "--group", " ", "22/tcp"}, exitUsage, "fwctl allow: bad --group: group name is empty: expected a name"},
		{[]string{"allow", "22/tcp", "comment", "ssh\u2066"}, exitRejected, "description holds U+2066"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, tc.args)
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if code != tc.code || !strings.Contains(first, tc.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tc.code, tc.msg)
			}
			if tc.code == exitUsage && strings.HasPrefix(tc.msg, "fwctl: ") && !strings.Contains(stderr.String(), "usage: fwctl COMMAND") {
				t.Errorf("no usage printed:\n%s", stderr.String())
			}
		})
	}
}
