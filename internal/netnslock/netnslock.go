// Package netnslock makes one process the owner of its network namespace's
// firewall: only one fwd may install and reconcile the FWD- chains of a
// namespace, or two would take them from one another and the first clean
// stop would remove every rule the other relies on.
//
// The lock is a listening Unix socket with an abstract name (Linux only).
// Abstract names belong to the network namespace of the socket, so a fwd
// in another namespace has a lock of its own, and the kernel frees the name
// when the holder dies however it dies (kill -9 included): a crash never
// leaves the lock stuck, and nothing on disk has to be cleaned up. This is
// its own package, not part of internal/kernel, because it has one job
// unrelated to iptables (who may touch the rules, not what they are) and
// must be taken before anything of the kernel's is touched.
//
// A process that finds the name taken connects to it and learns the
// holder's pid with SO_PEERCRED (the credentials the holder had when it
// listened); the holder accepts and closes such connections at once.
package netnslock

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultName is the abstract socket name fwd locks its namespace with
// ("@fwd-owner" in ss -x).
const DefaultName = "fwd-owner"

// HeldError says that another process holds the lock.
type HeldError struct {
	Name string
	// PID is the holder's process id as this process sees it; 0 when it
	// could not be learned (another pid namespace, or the holder did not
	// answer).
	PID int
}

func (e *HeldError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("another process (pid %d)", e.PID)
	}
	return fmt.Sprintf("%s holds the lock @%s of this network namespace: only one fwd may own a namespace's firewall rules", who, e.Name)
}

// Lock is a held namespace lock. Release it with Close; process exit
// releases it too.
type Lock struct {
	ln   *net.UnixListener
	name string
	done sync.WaitGroup
}

// Acquire takes the lock called name (an abstract socket name without the
// leading '@') in the calling thread's network namespace. When another
// process holds it, the error is a *HeldError.
func Acquire(name string) (*Lock, error) {
	if name == "" {
		return nil, errors.New("netnslock: empty lock name")
	}
	addr := &net.UnixAddr{Name: "@" + name, Net: "unix"}
	ln, err := net.ListenUnix("unix", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &HeldError{Name: name, PID: holderPID(addr)}
		}
		return nil, fmt.Errorf("lock @%s: %w", name, err)
	}
	l := &Lock{ln: ln, name: name}
	l.done.Go(l.serve)
	return l, nil
}

// Name returns the lock's abstract socket name, without the '@'.
func (l *Lock) Name() string { return l.name }

// serve accepts and closes at once the connections of processes that ask
// who holds the lock (SO_PEERCRED needs no byte exchanged), so that they
// never pile up in the backlog.
func (l *Lock) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		c.Close()
	}
}

// Close releases the lock.
func (l *Lock) Close() error {
	err := l.ln.Close()
	l.done.Wait()
	if err != nil {
		return fmt.Errorf("release lock @%s: %w", l.name, err)
	}
	return nil
}

// holderPID connects to the lock and returns the pid of the process that
// listens on it, or 0.
func holderPID(addr *net.UnixAddr) int {
	c, err := net.DialUnix("unix", nil, addr)
	if err != nil {
		return 0
	}
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0
	}
	return int(cred.Pid)
}
