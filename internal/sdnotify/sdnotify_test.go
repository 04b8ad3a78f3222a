package sdnotify

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens the systemd side: a unix datagram socket at name.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recv reads one message; the sender has written it before returning.
func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// pending says whether a message is waiting.
func pending(c *net.UnixConn) bool {
	c.SetReadDeadline(time.Now())
	_, err := c.Read(make([]byte, 4096))
	return err == nil
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSendPathAndAbstract(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		"@fwd-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36),
	} {
		t.Run(name[:1], func(t *testing.T) {
			c := listen(t, name)
			n, err := New(env(map[string]string{"NOTIFY_SOCKET": name}))
			if err != nil || n == nil {
				t.Fatalf("New: %v, %v", n, err)
			}
			if err := n.Ready("rules abc: 1 group"); err != nil {
				t.Fatal(err)
			}
			if got, want := recv(t, c), "READY=1\nSTATUS=rules abc: 1 group"; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			got := recv(t, c)
			lines := strings.Split(got, "\n")
			if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
				t.Fatalf("reloading: got %q", got)
			}
			if us, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || us <= 0 {
				t.Errorf("MONOTONIC_USEC: %q", lines[1])
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		sock    string
		wantNil bool
		wantErr string
	}{
		{"", true, ""},
		{"/run/systemd/notify", false, ""},
		{"@abstract", false, ""},
		{"relative/path", true, `NOTIFY_SOCKET "relative/path"`},
	} {
		n, err := New(env(map[string]string{"NOTIFY_SOCKET": tc.sock}))
		if (n == nil) != tc.wantNil {
			t.Errorf("%q: Notifier %v, want nil %v", tc.sock, n, tc.wantNil)
		}
		if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: err %v, want %q", tc.sock, err, tc.wantErr)
		}
	}
	// A nil Notifier does nothing, without error.
	var n *Notifier
	if err := n.Ready("x"); err != nil {
		t.Error(err)
	}
	if err := n.Reloading(); err != nil {
		t.Error(err)
	}
}

func TestSendRejectsNewline(t *testing.T) {
	n, _ := New(env(map[string]string{"NOTIFY_SOCKET": "/nonexistent"}))
	if err := n.Status("two\nlines"); err == nil || !strings.Contains(err.Error(), "newline") {
		t.Errorf("got %v, want a newline error", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		wantErr   bool
	}{
		{"", "", 0, false},
		{"30000000", "", 15 * time.Second, false},
		{"30000000", "42", 15 * time.Second, false},
		{"30000000", "43", 0, false}, // meant for another process
		{"0", "", 0, true},
		{"soon", "", 0, true},
		{"1000", "x", 0, true},
	} {
		got, err := WatchdogInterval(env(map[string]string{"WATCHDOG_USEC": tc.usec, "WATCHDOG_PID": tc.pid}), 42)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("USEC %q PID %q: %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestWatchSkipsWhileDead drives the ticks by hand: a ping for each tick
// on which the loop is alive, none while it is not.
func TestWatchSkipsWhileDead(t *testing.T) {
	name := filepath.Join(t.TempDir(), "notify")
	c := listen(t, name)
	n, _ := New(env(map[string]string{"NOTIFY_SOCKET": name}))
	tick := make(chan time.Time)
	stop := make(chan struct{})
	checked := make(chan struct{})
	reported := make(chan error, 1)
	alive := []error{nil, errors.New("queue 0 stuck"), nil}
	i := 0
	done := make(chan struct{})
	go func() {
		n.Watch(stop, tick, func() error {
			defer func() { checked <- struct{}{} }()
			i++
			return alive[i-1]
		}, func(err error) { reported <- err })
		close(done)
	}()
	var got []string
	for k := range alive {
		tick <- time.Time{}
		<-checked
		if alive[k] != nil {
			if err := <-reported; err != alive[k] {
				t.Errorf("reported %v, want %v", err, alive[k])
			}
			continue
		}
		got = append(got, recv(t, c))
	}
	close(stop)
	<-done
	if pending(c) {
		t.Error("a ping was sent while the loop was not alive")
	}
	if len(got) != 2 || got[0] != "WATCHDOG=1" || got[1] != "WATCHDOG=1" {
		t.Errorf("pings %q, want two WATCHDOG=1", got)
	}
}
