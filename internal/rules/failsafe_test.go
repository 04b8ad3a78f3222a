package rules

import (
	"strings"
	"testing"
)

func TestFailsafeKey(t *testing.T) {
	const groups = "groups: [{name: a}]\n"
	for _, tc := range []struct {
		name, in string
		ssh      bool
		err      string
	}{
		{"absent", "version: 1\n" + groups, false, ""},
		{"on", "version: 1\nfailsafe: {ssh: true}\n" + groups, true, ""},
		{"off", "version: 1\nfailsafe:\n  ssh: false\n" + groups, false, ""},
		{"empty", "version: 1\nfailsafe:\n" + groups, false, ""},
		{"unknown key", "version: 1\nfailsafe: {sshd: true}\n" + groups, false, `e.yaml:2:12: unknown key "sshd" in failsafe: expected one of ssh`},
		{"not a bool", "version: 1\nfailsafe: {ssh: yes}\n" + groups, false, `e.yaml:2:17: failsafe ssh: expected true or false, got "yes"`},
		{"not a mapping", "version: 1\nfailsafe: true\n" + groups, false, `e.yaml:2:11: failsafe: expected a mapping such as {ssh: true}, got "true"`},
		{"repeated", "version: 1\nfailsafe: {ssh: true}\nfailsafe: {ssh: true}\n" + groups, false, `e.yaml:3:1: key "failsafe" repeated in rules file`},
	} {
		f, err := Parse("e.yaml", []byte(tc.in), Options{})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || f.Failsafe.SSH != tc.ssh {
			t.Errorf("%s: ssh %v, %v; want %v", tc.name, f != nil && f.Failsafe.SSH, err, tc.ssh)
		}
	}
}
