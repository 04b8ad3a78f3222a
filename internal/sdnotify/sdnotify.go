// Package sdnotify is the daemon's side of systemd's notify protocol
// (sd_notify(3)): one datagram of "KEY=VALUE" lines per message, sent to
// the unix datagram socket named by NOTIFY_SOCKET (a path, or an
// abstract name written with a leading '@'). fwd uses it for Type=notify:
// READY=1 once its kernel rules and queues are live, RELOADING=1 and
// READY=1 around every change of the rules, STATUS= lines, and WATCHDOG=1
// while the loop that serves the queues still turns.
//
// It is written here rather than taken from github.com/coreos/go-systemd:
// the protocol is a sendto(2) of a few bytes, about forty lines, and that
// module brings D-Bus, journal and unit-file packages fwd does not use.
//
// A Notifier is nil when fwd does not run under systemd (NOTIFY_SOCKET
// unset); every method of a nil Notifier does nothing, so callers need
// not check.
package sdnotify

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends notifications to one socket. It is safe for concurrent
// use: each message is one datagram on a socket of its own.
type Notifier struct {
	addr *net.UnixAddr
}

// New returns a Notifier for the environment getenv reads (os.Getenv in
// the daemon): nil, and no error, when NOTIFY_SOCKET is unset or empty.
func New(getenv func(string) string) (*Notifier, error) {
	name := getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return nil, fmt.Errorf("NOTIFY_SOCKET %q: want an absolute path or an abstract name starting with @", name)
	}
	// Go's net package takes a leading '@' as the abstract namespace
	// (a name starting with a NUL byte), as systemd means it.
	return &Notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}, nil
}

// Socket is the socket's name as NOTIFY_SOCKET gave it; "" for nil.
func (n *Notifier) Socket() string {
	if n == nil {
		return ""
	}
	return n.addr.Name
}

// Send sends the lines as one message. A line must not contain a
// newline.
func (n *Notifier) Send(lines ...string) error {
	if n == nil {
		return nil
	}
	for _, l := range lines {
		if strings.ContainsRune(l, '\n') {
			return fmt.Errorf("notify: %q: a line must not contain a newline", l)
		}
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(lines, "\n"))); err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// Ready says the service is up (READY=1), with a status line.
func (n *Notifier) Ready(status string) error {
	return n.Send("READY=1", "STATUS="+status)
}

// Reloading says a reload has begun (RELOADING=1 with the
// CLOCK_MONOTONIC time in microseconds, as Type=notify-reload wants it).
// Ready ends it.
func (n *Notifier) Reloading() error {
	if n == nil {
		return nil
	}
	return n.Send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10))
}

// Status sets the one-line status systemctl status shows.
func (n *Notifier) Status(status string) error {
	return n.Send("STATUS=" + status)
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping() error {
	return n.Send("STOPPING=1")
}

// Watchdog is one keep-alive ping (WATCHDOG=1).
func (n *Notifier) Watchdog() error {
	return n.Send("WATCHDOG=1")
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}

// WatchdogInterval reads WATCHDOG_USEC (and WATCHDOG_PID, which, when
// set, must be pid) from getenv and returns how often to ping: half the
// timeout, as sd_watchdog_enabled(3) advises. It returns 0 when the
// watchdog is off or meant for another process.
func WatchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	s := getenv("WATCHDOG_USEC")
	if s == "" {
		return 0, nil
	}
	usec, err := strconv.ParseUint(s, 10, 63)
	if err != nil || usec == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC %q: want a positive number of microseconds", s)
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		want, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("WATCHDOG_PID %q: want a process id", p)
		}
		if want != pid {
			return 0, nil
		}
	}
	return time.Duration(usec) * time.Microsecond / 2, nil
}

// Watch sends WATCHDOG=1 on every tick while alive says the watched
// loop still turns, until stop is closed. When alive returns an error the
// ping is skipped, so that systemd, after WatchdogSec= without one,
// restarts a daemon that runs but no longer serves; report hears each
// such error, and each failed send.
func (n *Notifier) Watch(stop <-chan struct{}, tick <-chan time.Time, alive func() error, report func(error)) {
	for {
		select {
		case <-stop:
			return
		case <-tick:
		}
		if err := alive(); err != nil {
			report(err)
			continue
		}
		if err := n.Watchdog(); err != nil {
			report(err)
		}
	}
}
