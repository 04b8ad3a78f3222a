package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/control"
)

// fwctlBuild is the fwctl binary, built once for every test that needs it,
// next to fwd in TestMain's directory (removed when the tests end).
var fwctlBuild struct {
	once sync.Once
	path string
	err  error
}

// goCommand finds the go command. Root's PATH may lack it (sudo's
// secure_path), but go test puts its own toolchain's bin first in the
// test binary's PATH.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// fwctlBin returns the fwctl binary, building it on first use. It is not
// built with the race detector: the CLI's races are the unit tests'
// business, and here it runs hundreds of times.
func fwctlBin(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	fwctlBuild.once.Do(func() {
		p := filepath.Join(filepath.Dir(fwdBin), "fwctl")
		build := exec.Command(goCommand(), "build", "-o", p, "./cmd/fwctl")
		build.Dir = repoRoot
		if out, err := build.CombinedOutput(); err != nil {
			fwctlBuild.err = fmt.Errorf("go build ./cmd/fwctl: %w\n%s", err, out)
			return
		}
		fwctlBuild.path = p
	})
	if fwctlBuild.err != nil {
		t.Fatal(fwctlBuild.err)
	}
	return fwctlBuild.path
}

// ctlResult is one fwctl run.
type ctlResult struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r ctlResult) String() string {
	return fmt.Sprintf("fwctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runFwctl runs fwctl with args, as cred when not nil. It never fails the
// test itself (it may run on any goroutine): a fwctl that cannot start or
// hangs gets code -1 and the reason in stderr.
func runFwctl(bin string, cred *syscall.Credential, args ...string) ctlResult {
	return runCtl(bin, args, func(cmd *exec.Cmd) {
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
	})
}

// runCtl runs bin with args, prepared by prep (its environment, its
// credentials), within 30 s, as runFwctl says.
func runCtl(bin string, args []string, prep func(*exec.Cmd)) ctlResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	prep(cmd)
	err := cmd.Run()
	r := ctlResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.stderr += fmt.Sprintf("\n(run: %v)", err)
	}
	return r
}

// fwctl runs fwctl against this environment's fwd.
func (e *env) fwctl(args ...string) ctlResult {
	return runFwctl(fwctlBin(e.t), nil, append([]string{"--socket", e.socket()}, args...)...)
}

// mustFwctl runs fwctl against this environment's fwd and wants exit 0.
func (e *env) mustFwctl(args ...string) ctlResult {
	e.t.Helper()
	r := e.fwctl(args...)
	if r.code != 0 {
		e.t.Fatalf("%s\nwant exit 0", r)
	}
	return r
}

// status is fwctl -o json status, decoded.
func (e *env) status() control.Status {
	e.t.Helper()
	r := e.mustFwctl("status", "-o", "json")
	var st control.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		e.t.Fatalf("decode fwctl status -o json: %v\n%s", err, r.stdout)
	}
	return st
}

// counter is one of fwd's counters in a status.
func counter(t *testing.T, st control.Status, name string) uint64 {
	t.Helper()
	v, ok := st.Counters[name]
	if !ok {
		t.Fatalf("status has no counter %q: %v", name, st.Counters)
	}
	return v
}

// writeAtomic replaces path's content in one rename, so that a reload
// never reads half a file.
func writeAtomic(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".writing"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
