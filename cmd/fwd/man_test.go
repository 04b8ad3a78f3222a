package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/manpage"
)

var updateMan = flag.Bool("update", false, "rewrite man/fwd.8 from fwd --help (make man)")

// manPage is fwd(8): the options are fwd --help's, parsed from its
// output; the rest is the daemon's contract from its doc comment.
func manPage(t *testing.T) manpage.Page {
	t.Helper()
	var help bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &help); err != flag.ErrHelp {
		t.Fatalf("fwd -h: %v", err)
	}
	head, defaults, ok := strings.Cut(help.String(), "\nflags:\n")
	if !ok {
		t.Fatalf("fwd -h has no flags: part:\n%s", help.String())
	}
	// --queues defaults to the machine's CPU count: say so, not the count
	// of the machine that ran make man.
	defaults = strings.Replace(defaults, fmt.Sprintf("are balanced over them (default %d)", runtime.NumCPU()),
		"are balanced over them (default: one per CPU)", 1)
	opts, err := manpage.FlagItems(defaults)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(head), "\n")
	summary := strings.TrimPrefix(strings.TrimSuffix(strings.TrimSpace(lines[len(lines)-1]), "."), "fwd ")
	return manpage.Page{
		Name: "fwd", Section: 8, Manual: "System Manager's Manual",
		Summary:  summary,
		Synopsis: []string{"fwd [options]", "fwd --version"},
		Sections: []manpage.Section{
			{Title: "Description", Paras: []string{
				"fwd is a host firewall daemon with the semantics of an AWS security group: allow-only rules in groups, the union of every rule decides, stateful. It loads a rules file (version 1, described in /usr/share/doc/fwd/rules.md, rules/README.md in the source), installs its own iptables and ip6tables chains that send each new connection's first packet to NFQUEUE, and answers every queued packet from a compiled table.",
				"SIGHUP reloads the rules file all or nothing: a bad file changes nothing. SIGTERM and SIGINT remove every kernel rule fwd installed and exit. SIGUSR1 logs the counters. fwctl(8) talks to a running fwd on its control socket: status, reload and runtime edits, all through the same path as SIGHUP.",
				"One fwd owns a network namespace's firewall: a second one refuses to start. While fwd is not running after a crash, its kernel rules stay and new connections are dropped (fail-closed) unless it was started with --fail-open; established connections keep working.",
				"Under systemd (Type=notify) fwd sends READY=1 once its kernel rules and queues are live, RELOADING=1 and READY=1 around every change of the rules, STATUS= with the rules' hash and size, and WATCHDOG=1 while the loop that serves the queues still turns.",
			}},
			{Title: "Options", Items: opts},
			{Title: "Exit status", Items: []manpage.Item{
				{Tag: fmt.Sprint(exitOK), Text: "clean stop"},
				{Tag: fmt.Sprint(exitFailure), Text: "runtime failure (kernel rules, queues, control socket, another fwd)"},
				{Tag: fmt.Sprint(exitUsage), Text: "usage error"},
				{Tag: fmt.Sprint(exitBadRules), Text: "bad or missing rules file"},
			}},
			{Title: "Files", Items: []manpage.Item{
				{Tag: DefaultRulesPath, Text: "the rules file"},
				{Tag: "/usr/share/fwd/default.yaml", Text: "the shipped default rules, used when the rules file is missing (edits are then refused)"},
				{Tag: "/run/fwd/fwd.sock", Text: "the control socket"},
			}},
			{Title: "See also", Paras: []string{"fwctl(8), iptables(8), systemd.service(5)"}},
		},
	}
}

// TestManPage keeps man/fwd.8 what fwd --help says; `make man` (this
// test with -update) rewrites it.
func TestManPage(t *testing.T) {
	var got bytes.Buffer
	if err := manPage(t).Write(&got); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "man", "fwd.8")
	if *updateMan {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (make man writes it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("%s differs from fwd --help: run make man and review the diff", path)
	}
	for _, flag := range []string{`\-\-rules file`, `\-\-version`, `\-\-fail\-open`} {
		if !bytes.Contains(want, []byte(".B "+flag+"\n")) {
			t.Errorf("%s lacks option %s", path, flag)
		}
	}
}
