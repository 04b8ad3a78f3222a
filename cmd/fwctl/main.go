// Command fwctl is fwd's command line: it validates and checks rule files
// offline, replays captures through the engine, and (against a running fwd)
// edits and reloads the live rules with ufw's grammar.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Exit codes. Scripts depend on them; README.md lists them.
const (
	exitOK         = 0 // success
	exitRejected   = 1 // input rejected: invalid rules file, bad address, bad capture
	exitUsage      = 2 // usage error: unknown command, missing or unknown flag
	exitUnreach    = 3 // the daemon could not be reached
	exitPermission = 4 // permission denied (socket or file)
	exitIncomplete = 5 // replay stopped early on a truncated or corrupt capture
	exitConflict   = 6 // fleet mode: the store changed during the edit, which gave up after its retries
)

// env is what a command runs with; tests substitute it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// env and clock, when set, stand for the environment and the
	// clock (tests); see getenv and now.
	env   map[string]string
	clock func() time.Time
}

type command struct {
	name    string
	summary string
	run     func(e env, args []string) int
}

func commands() []command {
	return []command{
		{"validate", "validate FILE...: check rule files, print a summary or every error", runValidate},
		{"check", "check [-f FILE] [--batch] [PROTO SRC PORT]: what the rules (or the running fwd) do to one connection", runCheck},
		{"replay", "replay -f RULES CAPTURE...: run recorded traffic through the rules", runReplay},
		{"allow", "allow [in|out] RULE: allow traffic (443/tcp, ssh, from ADDR to any port N proto P)", runAllow},
		{"delete", "delete [--revoke] N... | delete allow [on IFACE] RULE | delete deny RULE | delete acl N: remove rules or ACL entries", runDelete},
		{"status", "status [numbered|verbose]: the running fwd's rules and counters", runStatus},
		{"reload", "reload [--revoke]: reload the running fwd's rules file (all or nothing)", runReload},
		{"import", "import aws FILE.json: AWS security groups (describe-security-groups output) to a rules file", runImport},
		{"export", "export aws [-f RULES]: a rules file's groups as AWS security-group permissions (JSON)", runExport},
		{"version", "version: print fwctl's version and commit (also --version)", runVersion},
		{"completion", "completion bash|zsh: print a shell completion script", runCompletion},
		{"deny", "deny [--expire D] [in|out] RULE: a network-ACL deny entry (from ADDR, to any port N proto P)", runDeny},
		{"insert", "insert N deny|allow RULE: a network-ACL entry numbered N", runInsert},
		{"reject", "reject: not available, fwd drops (use deny)", runNotAllow("reject")},
		{"limit", "limit [in] RULE: allow, braking each peer at 6 new connections in 30 s (ufw's limit)", runLimit},
		{"app", "app list | app info NAME: application profiles (allow 'Nginx Full')", runApp},
		{"history", "history [-v]: every change of the running rules, who made it, and its diff", runHistory},
		{"rollback", "rollback [N]: restore the rules as of history entry N (all or nothing); no N: undo the change pending confirmation now", runRollback},
		{"suggest", "suggest [--prefix4 N] [--prefix6 N]: rules for what fwd --audit would have dropped", runSuggest},
		{"apply", "apply [--confirm D] FILE: replace the running fwd's rules file with FILE (validated, all or nothing)", runApply},
		{"confirm", "confirm: keep the change made with --confirm D (else fwd rolls it back at the deadline)", runConfirm},
		{"fleet", "fleet apply|export|assign|unassign|hosts|members|status: fleet mode, the groups of many hosts in etcd (--store)", runFleet},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fwctl COMMAND [ARGS]")
	fmt.Fprintln(w, "commands:")
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		if c.summary != "" {
			fmt.Fprintf(w, "  %-*s %s\n", width, c.name, c.summary)
		}
	}
	fmt.Fprintln(w, "options for the commands that talk to fwd: --socket PATH, -o json, --dry-run, --group NAME, --expire DURATION, --revoke, --confirm DURATION, --force")
}

func run(e env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	args = hoistGlobals(args)
	switch args[0] {
	case "-h", "--help", "help":
		usage(e.stdout)
		return exitOK
	case "--version":
		return runVersion(e, args[1:])
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	if name, _, _ := strings.Cut(args[0], "="); strings.HasPrefix(name, "-") {
		// hoistGlobals found no command after the options.
		if _, ok := globalOpts[name]; ok {
			fmt.Fprintf(e.stderr, "fwctl: missing command after %s\n", strings.Join(args, " "))
		} else {
			fmt.Fprintf(e.stderr, "fwctl: unknown option %s\n", name)
		}
		usage(e.stderr)
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "fwctl: unknown command %q\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func main() {
	os.Exit(run(env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}
