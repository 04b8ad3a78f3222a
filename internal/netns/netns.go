// Package netns builds the small network topologies that fwd's privileged
// tests (internal/e2e) and its live benchmark (bench/live) run in, and
// runs code inside them. It is Linux only and needs root and iproute2's
// ip command.
//
// The contract:
//
//   - Do runs a function inside a named network namespace
//     (/run/netns/NAME), on an OS thread locked to it: sockets the
//     function opens belong to that namespace and keep working from any
//     goroutine afterwards.
//   - Add creates a namespace with its loopback up; Delete kills what
//     still runs in it and deletes it. Command runs a program inside one.
//   - AddVeth joins two namespaces with a veth pair, gives each end its
//     addresses and sets both up.
//   - Flood sends a bounded raw flood of new IPv4 UDP flows (a count
//     limit, a duration limit that is required, a stop channel);
//     UDPInput reads what reached a namespace's UDP layer.
//
// Only test addresses are accepted: 198.18.0.0/15 (RFC 2544, for
// benchmarks) and 2001:db8::/32 (RFC 3849, for documentation). A flood
// forges its source addresses and AddVeth puts addresses on links, so bad
// input gets an error and changes nothing rather than a packet or an
// address outside them.
package netns

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is where iproute2 keeps named network namespaces.
const Dir = "/run/netns"

// Test address ranges: the only ones this package puts on a link or in a
// packet.
var (
	bench4 = netip.MustParsePrefix("198.18.0.0/15")
	doc6   = netip.MustParsePrefix("2001:db8::/32")
)

// inTestRange reports whether a is in 198.18.0.0/15 or 2001:db8::/32.
func inTestRange(a netip.Addr) bool {
	return bench4.Contains(a) || doc6.Contains(a)
}

// checkName refuses names that are not a plain file name under Dir.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("netns: bad namespace name %q", name)
	}
	return nil
}

// Do runs fn on an OS thread inside namespace name: sockets it opens
// belong to that namespace and keep working from any thread afterwards.
// The thread is never unlocked: it exits with its goroutine rather than
// go back to the pool in another namespace. Do returns fn's error, or why
// the namespace could not be entered (then fn does not run).
func Do(name string, fn func() error) error {
	if err := checkName(name); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(Dir + "/" + name)
		if err != nil {
			errc <- fmt.Errorf("netns: %w", err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netns: setns %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Command returns a command that runs name with args inside namespace ns
// (through ip netns exec, which also mounts the namespace's /sys).
func Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// ip runs the ip command and returns an error that carries its output.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netns: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Add creates the network namespace name and sets its loopback up. It is
// an error if the namespace exists.
func Add(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := ip("netns", "add", name); err != nil {
		return err
	}
	if err := ip("-n", name, "link", "set", "lo", "up"); err != nil {
		Delete(name)
		return err
	}
	return nil
}

// Exists reports whether the namespace name exists.
func Exists(name string) bool {
	if checkName(name) != nil {
		return false
	}
	_, err := os.Stat(Dir + "/" + name)
	return err == nil
}

// Delete kills (SIGKILL) every process still in namespace name, then
// deletes it. A namespace that does not exist is no error. This process is
// never killed, although a thread of it inside the namespace (see Do)
// makes ip list it.
func Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if !Exists(name) {
		return nil
	}
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("netns: kill %d in %s: %w", pid, name, err)
			}
		}
	}
	return ip("netns", "del", name)
}
