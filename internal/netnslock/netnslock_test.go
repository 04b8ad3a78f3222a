package netnslock

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// testName is a lock name of this test's own, so that the tests never
// meet a real fwd's lock in the host's namespace.
func testName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	return "fwd-owner-test-" + hex.EncodeToString(b)
}

func TestSecondAcquireFailsWithHolderPID(t *testing.T) {
	name := testName(t)
	l, err := Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(name)
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("second Acquire: %v, want a *HeldError", err)
	}
	if held.PID != os.Getpid() {
		t.Errorf("holder pid %d, want %d (ours)", held.PID, os.Getpid())
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())) || !strings.Contains(msg, "@"+name) {
		t.Errorf("message %q names neither the holder's pid nor the lock", msg)
	}
	// Asking again and again must not fill the holder's backlog.
	for range 300 {
		if _, err := Acquire(name); !errors.As(err, &held) || held.PID != os.Getpid() {
			t.Fatalf("repeated Acquire: %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(name)
	if err != nil {
		t.Fatalf("Acquire after Close: %v", err)
	}
	l2.Close()
}

func TestEmptyNameRefused(t *testing.T) {
	if _, err := Acquire(""); err == nil {
		t.Fatal("Acquire(\"\") succeeded")
	}
}

// TestMain doubles as the helper process of TestKill9ReleasesLock: with
// NETNSLOCK_HOLD set, the test binary holds that lock until killed.
func TestMain(m *testing.M) {
	if name := os.Getenv("NETNSLOCK_HOLD"); name != "" {
		if _, err := Acquire(name); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("held")
		select {}
	}
	os.Exit(m.Run())
}

// TestKill9ReleasesLock: a holder killed with SIGKILL leaves nothing
// behind; the next Acquire succeeds.
func TestKill9ReleasesLock(t *testing.T) {
	name := testName(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "NETNSLOCK_HOLD="+name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "held" {
		t.Fatalf("helper: %q %v", line, err)
	}
	var held *HeldError
	if _, err := Acquire(name); !errors.As(err, &held) || held.PID != cmd.Process.Pid {
		t.Fatalf("Acquire while the helper holds the lock: %v, want held by pid %d", err, cmd.Process.Pid)
	}
	cmd.Process.Signal(unix.SIGKILL)
	cmd.Wait()
	l, err := Acquire(name)
	if err != nil {
		t.Fatalf("Acquire after the holder's kill -9: %v", err)
	}
	l.Close()
}

// TestOtherNamespaceUnaffected: the same name in another network namespace
// is another lock.
func TestOtherNamespaceUnaffected(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (a network namespace); CI=true forbids skipping")
		}
		t.Skip("needs root (a network namespace)")
	}
	name := testName(t)
	l, err := Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread never goes back to the pool: it leaves with the
		// goroutine, in its own namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		l2, err := Acquire(name)
		if err != nil {
			errc <- fmt.Errorf("Acquire in a new namespace: %w", err)
			return
		}
		errc <- l2.Close()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
