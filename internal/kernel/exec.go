package kernel

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// ExecRunner runs the iptables binaries found in PATH (whichever backend,
// nf_tables or legacy, the system chose).
type ExecRunner struct {
	// Prefix, when set, is put before every command; the tests use
	// ["ip", "netns", "exec", NAME].
	Prefix []string
}

func (e ExecRunner) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), e.Prefix...), name), args...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

func binary(fam Family, tool string) string {
	if fam == IPv6 {
		return "ip6tables-" + tool
	}
	return "iptables-" + tool
}

// Save implements Runner.
func (e ExecRunner) Save(ctx context.Context, fam Family) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := e.command(ctx, binary(fam, "save"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", binary(fam, "save"), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Restore implements Runner.
func (e ExecRunner) Restore(ctx context.Context, fam Family, input string, mode RestoreMode) error {
	args := []string{"-w", "5"}
	if mode == NoFlush {
		args = append(args, "--noflush")
	}
	var stderr bytes.Buffer
	cmd := e.command(ctx, binary(fam, "restore"), args...)
	cmd.Stdin = strings.NewReader(input)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", binary(fam, "restore"), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
