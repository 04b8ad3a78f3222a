package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readmeExitCodes reads the exit-code table of the README (issue 18):
// name -> code, from rows "| 3 | unreachable | ... |".
func readmeExitCodes(t *testing.T) map[string]int {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "### Exit codes\n")
	if !ok {
		t.Fatal("README.md has no ### Exit codes section")
	}
	table, _, _ = strings.Cut(table, "\n###")
	row := regexp.MustCompile(`(?m)^\| (\d+) \| (\w+) \|`)
	codes := map[string]int{}
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		n, _ := strconv.Atoi(m[1])
		codes[m[2]] = n
	}
	return codes
}

// TestExitCodesREADME: the README's exit-code table names the codes
// fwctl has, with the same numbers.
func TestExitCodesREADME(t *testing.T) {
	want := map[string]int{"ok": exitOK, "rejected": exitRejected, "usage": exitUsage,
		"unreachable": exitUnreach, "permission": exitPermission, "incomplete": exitIncomplete,
		"conflict": exitConflict}
	got := readmeExitCodes(t)
	if len(got) != len(want) {
		t.Errorf("README's exit codes %v, want %v", got, want)
	}
	for name, code := range want {
		if got[name] != code {
			t.Errorf("README: %s is %d, fwctl's is %d", name, got[name], code)
		}
	}
}

// exitCase is one command line of TestExitCodes.
type exitCase struct {
	args []string
	code string // a name of the README's table
	// live: run against a fresh test daemon on goldenBase, whose socket
	// replaces SOCK in args; breakFile: make its rules file bad first.
	live, breakFile bool
	stdout, stderr  string // in stdout, stderr, when set
	stderrIs        string // all of stderr, when set
}

// TestExitCodes runs every command with good input, bad input, a usage
// error and --help (and, for those that talk to fwd, with no fwd on the
// socket) and checks the exit code the README's table gives for each
// (issue 18). Permission (4) needs another user: TestPermission. check's
// bad input is left to check's own tests.
func TestExitCodes(t *testing.T) {
	codes := readmeExitCodes(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\ngroups:\n  - name: x\n    ingress:\n      - {proto: tcp, ports: 99999, from: [any]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	rulesPath, capPath, offsets := replayFixture(t)
	data, err := os.ReadFile(capPath)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pcap")
	if err := os.WriteFile(cut, data[:offsets[3]+20], 0o600); err != nil {
		t.Fatal(err)
	}
	nobody := filepath.Join(dir, "nobody.sock") // no fwd listens here

	tests := []exitCase{
		{args: []string{}, code: "usage"},
		{args: []string{"help"}, code: "ok"},
		{args: []string{"--help"}, code: "ok"},
		{args: []string{"bogus"}, code: "usage"},

		{args: []string{"validate", "--help"}, code: "ok"},
		{args: []string{"validate", defaultRules}, code: "ok"},
		{args: []string{"validate", bad}, code: "rejected", stderr: bad + ":5:"},
		{args: []string{"validate", missing}, code: "rejected", stderrIs: missing + ": no such file or directory\n"},
		{args: []string{"validate"}, code: "usage"},
		{args: []string{"validate", "--nope", defaultRules}, code: "usage"},

		{args: []string{"check", "--help"}, code: "ok"},
		{args: []string{"check"}, code: "usage"},
		{args: []string{"check", "--nope", "-f", defaultRules, "tcp", "198.51.100.7", "443"}, code: "usage"},
		{args: []string{"check", "-f", defaultRules, "tcp"}, code: "usage"},

		{args: []string{"replay", "--help"}, code: "ok"},
		{args: []string{"replay", "-f", rulesPath, capPath}, code: "ok"},
		{args: []string{"replay", "-f", bad, capPath}, code: "rejected"},
		{args: []string{"replay", "-f", rulesPath, bad}, code: "rejected"},
		{args: []string{"replay", "-f", rulesPath, cut}, code: "incomplete"},
		{args: []string{"replay", capPath}, code: "usage"},
		{args: []string{"replay", "-f", rulesPath, "--nope", capPath}, code: "usage"},

		{args: []string{"allow", "--help"}, code: "ok"},
		{args: []string{"allow", "8080/tcp", "--socket", "SOCK"}, code: "ok", live: true},
		{args: []string{"allow", "80,443/tcp", "--socket", "SOCK"}, code: "ok", live: true}, // skipped: exists
		{args: []string{"allow", "8080/tcp", "--socket", "SOCK"}, code: "rejected", live: true, breakFile: true},
		{args: []string{"allow", "99999/tcp", "--socket", "SOCK"}, code: "rejected", live: true},
		{args: []string{"allow", "sshh", "--socket", "SOCK"}, code: "rejected", live: true},
		{args: []string{"allow", "--socket", "SOCK"}, code: "usage", live: true},
		{args: []string{"allow", "--nope", "22/tcp"}, code: "usage"},
		{args: []string{"allow", "22/tcp", "--socket", nobody}, code: "unreachable"},

		{args: []string{"delete", "--help"}, code: "ok"},
		{args: []string{"delete", "1", "--socket", "SOCK"}, code: "ok", live: true},
		{args: []string{"delete", "allow", "22/tcp", "--socket", "SOCK"}, code: "rejected", live: true}, // from office only
		{args: []string{"delete", "99", "--socket", "SOCK"}, code: "rejected", live: true},
		{args: []string{"delete", "--socket", "SOCK"}, code: "usage", live: true},
		{args: []string{"delete", "one", "--socket", "SOCK"}, code: "usage", live: true},
		{args: []string{"delete", "1", "--socket", nobody}, code: "unreachable"},

		{args: []string{"status", "--help"}, code: "ok"},
		{args: []string{"status", "verbose", "--socket", "SOCK"}, code: "ok", live: true},
		{args: []string{"status", "bogus", "--socket", "SOCK"}, code: "usage", live: true},
		{args: []string{"status", "--dry-run", "--socket", "SOCK"}, code: "usage", live: true},
		{args: []string{"status", "--socket", nobody}, code: "unreachable"},

		{args: []string{"reload", "--help"}, code: "ok"},
		{args: []string{"reload", "--socket", "SOCK"}, code: "ok", live: true}, // unchanged
		{args: []string{"reload", "--socket", "SOCK"}, code: "rejected", live: true, breakFile: true},
		{args: []string{"reload", "extra", "--socket", "SOCK"}, code: "usage", live: true},
		{args: []string{"reload", "--socket", nobody}, code: "unreachable"},
	}
	tests = append(tests,
		exitCase{args: []string{"deny", "--help"}, code: "ok", stdout: "network ACL"},
		exitCase{args: []string{"deny", "from", "198.18.0.9", "--socket", "SOCK"}, code: "ok", live: true},
		exitCase{args: []string{"deny", "from", "198.18.0.9", "--expire", "x", "--socket", "SOCK"}, code: "usage", live: true},
		exitCase{args: []string{"insert", "1", "deny", "from", "nolist", "--socket", "SOCK"}, code: "rejected", live: true},
		exitCase{args: []string{"delete", "acl", "5", "--socket", "SOCK"}, code: "rejected", live: true},
		exitCase{args: []string{"deny", "from", "198.18.0.9", "--socket", nobody}, code: "unreachable"},
		exitCase{args: []string{"limit", "--help"}, code: "ok", stdout: "ufw's limit"},
		exitCase{args: []string{"limit", "22/tcp", "--socket", "SOCK"}, code: "ok", live: true},
		exitCase{args: []string{"limit", "out", "22/tcp", "--socket", "SOCK"}, code: "rejected", live: true, stderr: "only incoming rules"},
		exitCase{args: []string{"limit", "--socket", nobody, "22/tcp"}, code: "unreachable"},
		exitCase{args: []string{"app", "list", "--profiles", "testdata/profiles"}, code: "ok", stderr: "testdata/profiles/broken:4:"},
		exitCase{args: []string{"app", "info", "Nothing", "--profiles", "testdata/profiles"}, code: "rejected"},
		exitCase{args: []string{"app"}, code: "usage"},
		exitCase{args: []string{"app", "list", "--group", "x"}, code: "usage"},
		exitCase{args: []string{"version", "--help"}, code: "ok", stdout: "usage: fwctl version"},
		exitCase{args: []string{"version", "extra"}, code: "usage"},
		exitCase{args: []string{"completion", "--help"}, code: "ok", stdout: "usage: fwctl completion"},
		exitCase{args: []string{"completion", "fish"}, code: "usage"})
	for _, word := range []string{"reject"} {
		tests = append(tests,
			exitCase{args: []string{word, "--help"}, code: "ok", stdout: "allow-only"},
			exitCase{args: []string{word, "22"}, code: "rejected", stderr: "allow-only"})
	}
	for _, tt := range tests {
		name := strings.Join(tt.args, " ")
		if tt.breakFile {
			name += " (bad rules file)"
		}
		t.Run(name, func(t *testing.T) {
			want, ok := codes[tt.code]
			if !ok {
				t.Fatalf("README's table has no code %q", tt.code)
			}
			args := tt.args
			if tt.live {
				_, rp, sock := startDaemon(t, goldenBase, daemonOpts{})
				if tt.breakFile {
					if err := os.WriteFile(rp, []byte("version: 1\ngroups: [{name: a, ingress: [{proto: tcp, ports: 70000, from: [any]}]}]\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				args = make([]string, len(tt.args))
				for i, a := range tt.args {
					args[i] = strings.ReplaceAll(a, "SOCK", sock)
				}
			}
			code, stdout, stderr := fwctl(t, "", args...)
			if code != want {
				t.Errorf("exit %d, want %d (%s)\nstdout: %s\nstderr: %s", code, want, tt.code, stdout, stderr)
			}
			if tt.stderr != "" && !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q, want %q in it", stderr, tt.stderr)
			}
			if tt.stderrIs != "" && stderr != tt.stderrIs {
				t.Errorf("stderr %q, want %q", stderr, tt.stderrIs)
			}
			if tt.stdout != "" && !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q, want %q in it", stdout, tt.stdout)
			}
			if slices.Contains(args, "--help") && (!strings.Contains(stdout+stderr, "usage: fwctl") || code != exitOK) {
				t.Errorf("--help: exit %d, no usage printed:\n%s%s", code, stdout, stderr)
			}
		})
	}
}
