package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/manpage"
)

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // prefix of stdout
		err  string // in stderr
	}{
		{[]string{"version"}, exitOK, "fwctl ", ""},
		{[]string{"--version"}, exitOK, "fwctl ", ""},
		{[]string{"version", "extra"}, exitUsage, "", `unexpected argument "extra"`},
	} {
		code, stdout, stderr := fwctl(t, "", tc.args...)
		if code != tc.code || !strings.HasPrefix(stdout, tc.out) || !strings.Contains(stderr, tc.err) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout, stderr, tc.code, tc.out, tc.err)
		}
		if tc.code == exitOK && !strings.Contains(stdout, "(commit ") {
			t.Errorf("%q: %q says no commit", tc.args, stdout)
		}
	}
}

// TestCompletionBash sources the script in bash and completes words
// the way bash would.
func TestCompletionBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	code, script, stderr := fwctl(t, "", "completion", "bash")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.yaml"), nil, 0o644)
	for _, tc := range []struct {
		words string // COMP_WORDS, the last one being completed
		want  string // COMPREPLY, space-separated
	}{
		{"fwctl st", "status"},
		{"fwctl comp", "completion"},
		{"fwctl re", "replay reload reject"},
		{"fwctl --v", "--version"},
		{"fwctl completion ", "bash zsh"},
		{"fwctl status n", "numbered"},
		{"fwctl reload --so", "--socket"},
		{"fwctl fleet status --store-p", "--store-prefix"},
		{"fwctl fleet memb", "members"},
		{"fwctl validate " + dir + "/ru", dir + "/rules.yaml"},
	} {
		words := strings.Fields(tc.words)
		if strings.HasSuffix(tc.words, " ") {
			words = append(words, "")
		}
		prog := script + "\nCOMP_WORDS=(" + quoteAll(words) + ")\nCOMP_CWORD=" + itoa(len(words)-1) + "\n_fwctl\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command("bash", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("%q: completes to %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestCompletionZsh(t *testing.T) {
	code, script, _ := fwctl(t, "", "completion", "zsh")
	if code != exitOK || !strings.HasPrefix(script, "#compdef fwctl\n") {
		t.Fatalf("exit %d, script:\n%s", code, script)
	}
	for _, c := range commands() {
		if c.summary != "" && !strings.Contains(script, "'"+c.name+":") {
			t.Errorf("zsh script lacks command %s", c.name)
		}
	}
	if code, _, stderr := fwctl(t, "", "completion", "fish"); code != exitUsage || !strings.Contains(stderr, "bash|zsh") {
		t.Errorf("completion fish: exit %d, %q; want usage", code, stderr)
	}
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Log("zsh not installed: its script's syntax is not checked")
		return
	}
	cmd := exec.Command(zsh, "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v\n%s", err, out)
	}
}

func quoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + w + "'"
	}
	return strings.Join(q, " ")
}

func itoa(n int) string { return strconv.Itoa(n) }

// manPage is fwctl(8), from the same command list and text as fwctl
// --help.
func manPage(t *testing.T) manpage.Page {
	t.Helper()
	var help bytes.Buffer
	usage(&help)
	var cmds []manpage.Item
	for _, c := range commands() {
		if c.summary == "" {
			continue
		}
		tag, text, ok := strings.Cut(c.summary, ": ")
		if !ok {
			t.Fatalf("command %s: summary %q has no \"usage: text\" form", c.name, c.summary)
		}
		cmds = append(cmds, manpage.Item{Tag: "fwctl " + tag, Text: text})
	}
	_, opts, ok := strings.Cut(help.String(), "options for the commands that talk to fwd: ")
	if !ok {
		t.Fatalf("fwctl --help has no options line:\n%s", help.String())
	}
	return manpage.Page{
		Name: "fwctl", Section: 8, Manual: "System Manager's Manual",
		Summary:  "command line of the fwd security-group firewall",
		Synopsis: []string{"fwctl COMMAND [ARGS]", "fwctl --version", "fwctl completion bash|zsh"},
		Sections: []manpage.Section{
			{Title: "Description", Paras: []string{
				"fwctl validates and checks rule files offline, replays captures through the rules, and, against a running fwd(8), shows its rules and counters, reloads them and edits them with ufw's grammar. Every change goes through fwd's all-or-nothing path and is written back to its rules file.",
				"The commands that talk to fwd take: " + strings.TrimSpace(opts) + ". Read commands take -o json. Run any command with --help for its usage.",
			}},
			{Title: "Commands", Items: cmds},
			{Title: "Exit status", Items: []manpage.Item{
				{Tag: itoa(exitOK), Text: "success"},
				{Tag: itoa(exitRejected), Text: "input rejected: invalid rules file, bad address, bad capture"},
				{Tag: itoa(exitUsage), Text: "usage error: unknown command, missing or unknown flag"},
				{Tag: itoa(exitUnreach), Text: "the daemon could not be reached"},
				{Tag: itoa(exitPermission), Text: "permission denied (socket or file)"},
				{Tag: itoa(exitIncomplete), Text: "replay stopped early on a truncated or corrupt capture"},
				{Tag: itoa(exitConflict), Text: "fleet mode: the store changed during the edit, which gave up after its retries"},
			}},
			{Title: "Fleet mode", Paras: []string{
				"With a store named (--store URLS or $FWD_STORE), fwctl edits the policy of a fleet of fwd hosts in etcd instead of one running fwd: allow RULE --group G and delete allow RULE --group G change group G by compare-and-swap, and the fleet subcommands below manage the rest. " + strings.ReplaceAll(storeUsage, "\n", " "),
			}, Items: fleetItems()},
			{Title: "Files", Items: []manpage.Item{
				{Tag: "/run/fwd/fwd.sock", Text: "fwd's control socket (--socket)"},
				{Tag: "/etc/fwd/rules.yaml", Text: "the rules file fwd runs on and edits write to"},
			}},
			{Title: "See also", Paras: []string{"fwd(8), ufw(8)"}},
		},
	}
}

// fleetItems are the fleet subcommands for the man page.
func fleetItems() []manpage.Item {
	var out []manpage.Item
	for _, c := range fleetCommands() {
		out = append(out, manpage.Item{Tag: "fwctl fleet " + c.usage, Text: c.summary})
	}
	return out
}

// TestManPage keeps man/fwctl.8 what fwctl --help says; `make man` (this
// test with -update) rewrites it.
func TestManPage(t *testing.T) {
	var got bytes.Buffer
	if err := manPage(t).Write(&got); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "man", "fwctl.8")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (make man writes it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("%s differs from fwctl --help: run make man and review the diff", path)
	}
}
