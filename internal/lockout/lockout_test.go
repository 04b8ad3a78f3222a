package lockout

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// fakeProc builds a /proc tree: processes with a parent, a command, an
// environment and socket fds, and the namespace's tcp tables.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T) fakeProc {
	return fakeProc{t: t, root: t.TempDir()}
}

func (f fakeProc) write(rel, body string) {
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f fakeProc) proc(pid, ppid int, comm string, env []string, sockets ...int) {
	d := strconv.Itoa(pid)
	f.write(d+"/stat", d+" ("+comm+") S "+strconv.Itoa(ppid)+" 1 1 0")
	f.write(d+"/comm", comm+"\n")
	var e []byte
	for _, kv := range env {
		e = append(append(e, kv...), 0)
	}
	f.write(d+"/environ", string(e))
	if err := os.MkdirAll(filepath.Join(f.root, d, "fd"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	for i, in := range sockets {
		if err := os.Symlink("socket:["+strconv.Itoa(in)+"]", filepath.Join(f.root, d, "fd", strconv.Itoa(i+3))); err != nil {
			f.t.Fatal(err)
		}
	}
}

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

func TestParseSSHConnection(t *testing.T) {
	for _, tc := range []struct {
		in, client, server string
		bad                bool
	}{
		{in: "198.18.0.2 40000 198.18.0.1 22", client: "198.18.0.2:40000", server: "198.18.0.1:22"},
		{in: "2001:db8::2 40000 2001:db8::1 2222", client: "[2001:db8::2]:40000", server: "[2001:db8::1]:2222"},
		{in: "::ffff:198.18.0.2 40000 ::ffff:198.18.0.1 22", client: "198.18.0.2:40000", server: "198.18.0.1:22"},
		{in: "fe80::2%eth0 40000 fe80::1%eth0 22", client: "[fe80::2]:40000", server: "[fe80::1]:22"},
		{in: "198.18.0.2 40000 198.18.0.1", bad: true},
		{in: "198.18.0.2 x 198.18.0.1 22", bad: true},
		{in: "1.2.3 40000 198.18.0.1 22", bad: true},
		{in: "198.18.0.2 40000 198.18.0.1 0", bad: true},
	} {
		s, err := ParseSSHConnection(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || s.Client.String() != tc.client || s.Server.String() != tc.server {
			t.Errorf("%q: %v %v, %v; want %s %s", tc.in, s.Client, s.Server, err, tc.client, tc.server)
		}
	}
}

func TestSessionOf(t *testing.T) {
	f := newFakeProc(t)
	// sshd (100) → session sshd (200, holds the connection, inode 555)
	// → bash (300, SSH_CONNECTION) → sudo (400, environment reset) →
	// fwctl (500).
	f.proc(100, 1, "sshd", nil, 444)
	f.proc(200, 100, "sshd", nil, 555)
	f.proc(300, 200, "bash", []string{"HOME=/root", "SSH_CONNECTION=198.18.0.2 40000 198.18.0.1 22"})
	f.proc(400, 300, "sudo", []string{"HOME=/root"})
	f.proc(500, 400, "fwctl", []string{"PATH=/bin"})
	// 198.18.0.1:22 ← 198.18.0.2:40001, established, inode 555 (in
	// pid 200's namespace).
	f.write("200/net/tcp", tcpHeader+
		"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1\n"+
		"   1: 010012C6:0016 020012C6:9C41 01 00000000:00000000 00:00000000 00000000     0        0 555 1\n")
	p := Proc{Root: f.root}

	s, err := p.SessionOf(500, []uint16{22})
	if err != nil || s.Source != "environ" || s.PID != 300 || s.Client.String() != "198.18.0.2:40000" {
		t.Fatalf("through the environment: %v, %v", s, err)
	}

	// Without SSH_CONNECTION anywhere, the socket of pid 200 names it.
	f.proc(301, 200, "bash", nil)
	f.proc(501, 301, "fwctl", nil)
	s, err = p.SessionOf(501, []uint16{22})
	if err != nil || s.Source != "socket" || s.PID != 200 || s.Client.String() != "198.18.0.2:40001" || s.Server.String() != "198.18.0.1:22" {
		t.Fatalf("through the socket: %v, %v", s, err)
	}
	// ... only on an SSH port.
	if s, err := p.SessionOf(501, []uint16{2222}); err != ErrNoSession {
		t.Fatalf("socket on another port: %v, %v", s, err)
	}

	// A local console: no session.
	f.proc(600, 1, "login", nil)
	f.proc(601, 600, "fwctl", nil)
	if s, err := p.SessionOf(601, []uint16{22}); err != ErrNoSession {
		t.Fatalf("no session: %v, %v", s, err)
	}
	// A bad SSH_CONNECTION is an error, not a guess.
	f.proc(700, 1, "fwctl", []string{"SSH_CONNECTION=garbage"})
	if _, err := p.SessionOf(700, []uint16{22}); err == nil || err == ErrNoSession {
		t.Fatalf("bad SSH_CONNECTION: %v", err)
	}
}

func TestSSHPorts(t *testing.T) {
	f := newFakeProc(t)
	f.proc(100, 1, "sshd", nil, 444, 445)
	f.proc(200, 1, "nginx", nil, 446, 447)
	// sshd listens on 22 (v4) and 2222 (v6); nginx on 80 and 8022;
	// an established socket on 22 is no listener.
	f.write("net/tcp", tcpHeader+
		"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1\n"+
		"   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 446 1\n"+
		"   2: 00000000:1F56 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 447 1\n"+
		"   3: 010012C6:0017 020012C6:9C41 01 00000000:00000000 00:00000000 00000000     0        0 999 1\n")
	f.write("net/tcp6", tcpHeader+
		"   0: 00000000000000000000000000000000:08AE 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 445 1\n")
	p := Proc{Root: f.root}
	for _, tc := range []struct {
		configured []uint16
		want       []uint16
	}{
		{nil, []uint16{22, 2222}},
		{[]uint16{22}, []uint16{22, 2222}},
		{[]uint16{8022}, []uint16{22, 2222, 8022}}, // something listens on it
		{[]uint16{23}, []uint16{22, 2222}},         // nothing listens on 23
	} {
		if got := p.SSHPorts(tc.configured); !slices.Equal(got, tc.want) {
			t.Errorf("SSHPorts(%v) = %v, want %v", tc.configured, got, tc.want)
		}
	}
}

func TestHexAddrPort(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:0016":                         "127.0.0.1:22",
		"010012C6:9C41":                         "198.18.0.1:40001",
		"B80D0120000000000000000001000000:0016": "[2001:db8::1]:22",
		"0000000000000000FFFF0000020012C6:0016": "198.18.0.2:22",
	} {
		got, err := hexAddrPort(in)
		if err != nil || got != netip.MustParseAddrPort(want) {
			t.Errorf("%s: %v, %v; want %s", in, got, err, want)
		}
	}
}
