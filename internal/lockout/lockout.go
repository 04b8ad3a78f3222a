// Package lockout reads, from /proc, what fwd's lockout guard needs to
// know about the host's SSH: the SSH session a control-socket peer runs
// under (the peer's pid comes from SO_PEERCRED) and the TCP ports sshd
// listens on. It reads and never guesses: a session is either named by
// SSH_CONNECTION in the environment of the peer or one of its parents,
// or found as an established TCP socket to an SSH port held by the peer
// or one of its parents (sshd's session process holds it); otherwise
// there is none.
//
// It knows nothing of rules or tables; package lifecycle judges a table
// against what it reads.
package lockout

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultSSHPort is the port SSH is taken to listen on when nothing
// else is configured.
const DefaultSSHPort = 22

// maxDepth bounds the walk up a peer's parents.
const maxDepth = 32

// Session is one SSH connection: the client (the admin's address and
// port) and the server's end (an address of this host and the SSH port).
type Session struct {
	Client netip.AddrPort
	Server netip.AddrPort
	// PID is the process in which the session was found (the peer or a
	// parent); Source is how: "environ" (SSH_CONNECTION) or "socket".
	PID    int
	Source string
}

func (s Session) String() string {
	return fmt.Sprintf("ssh from %s to %s (pid %d, %s)", s.Client, s.Server, s.PID, s.Source)
}

// Proc reads a /proc file system. The zero value reads /proc.
type Proc struct {
	// Root is the /proc directory; "" means /proc. Tests point it at a
	// fake tree.
	Root string
}

func (p Proc) path(parts ...string) string {
	root := p.Root
	if root == "" {
		root = "/proc"
	}
	return filepath.Join(append([]string{root}, parts...)...)
}

// ParseSSHConnection parses the value of SSH_CONNECTION: "CLIENT_IP
// CLIENT_PORT SERVER_IP SERVER_PORT". IPv4-mapped IPv6 addresses are
// unmapped, as packets carry them.
func ParseSSHConnection(v string) (Session, error) {
	f := strings.Fields(v)
	if len(f) != 4 {
		return Session{}, fmt.Errorf("bad SSH_CONNECTION %q: expected CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT", v)
	}
	c, err := addrPort(f[0], f[1])
	if err != nil {
		return Session{}, fmt.Errorf("bad SSH_CONNECTION %q: %w", v, err)
	}
	s, err := addrPort(f[2], f[3])
	if err != nil {
		return Session{}, fmt.Errorf("bad SSH_CONNECTION %q: %w", v, err)
	}
	return Session{Client: c, Server: s}, nil
}

func addrPort(ip, port string) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(strings.TrimSuffix(ip, "%"+zoneOf(ip)))
	if err != nil {
		return netip.AddrPort{}, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", port)
	}
	return netip.AddrPortFrom(a.Unmap().WithZone(""), uint16(n)), nil
}

func zoneOf(ip string) string {
	if _, z, ok := strings.Cut(ip, "%"); ok {
		return z
	}
	return ""
}

// Parent returns pid's parent pid (0 when it has none or cannot be
// read).
func (p Proc) Parent(pid int) int {
	data, err := os.ReadFile(p.path(strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold anything: the
	// fields after the last ')' are state, ppid, ...
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// Comm returns pid's command name.
func (p Proc) Comm(pid int) string {
	data, err := os.ReadFile(p.path(strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// Env returns the value of variable name in pid's environment (as it
// was when the process started).
func (p Proc) Env(pid int, name string) (string, bool) {
	data, err := os.ReadFile(p.path(strconv.Itoa(pid), "environ"))
	if err != nil {
		return "", false
	}
	for kv := range bytes.SplitSeq(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(name+"=")); ok {
			return string(v), true
		}
	}
	return "", false
}

// chain is pid and its parents, up to init (excluded) or maxDepth.
func (p Proc) chain(pid int) []int {
	var out []int
	for pid > 1 && len(out) < maxDepth && !slices.Contains(out, pid) {
		out = append(out, pid)
		pid = p.Parent(pid)
	}
	return out
}

// ErrNoSession is returned by SessionOf when the process runs under no
// SSH session that can be read.
var ErrNoSession = errors.New("no ssh session")

// SessionOf finds the SSH session process pid runs under: first
// SSH_CONNECTION in the environment of pid or of a parent (sudo resets
// the environment, the shell above it has it), then an established TCP
// socket held by pid or a parent whose local port is one of sshPorts
// (sshd's session process, the parent of the login shell, holds the
// connection). It returns ErrNoSession when neither is found.
func (p Proc) SessionOf(pid int, sshPorts []uint16) (Session, error) {
	chain := p.chain(pid)
	for _, q := range chain {
		if v, ok := p.Env(q, "SSH_CONNECTION"); ok && strings.TrimSpace(v) != "" {
			s, err := ParseSSHConnection(v)
			if err != nil {
				return Session{}, fmt.Errorf("pid %d: %w", q, err)
			}
			s.PID, s.Source = q, "environ"
			return s, nil
		}
	}
	for _, q := range chain {
		inodes := p.socketInodes(q)
		if len(inodes) == 0 {
			continue
		}
		for _, e := range p.tcpEntries(q) {
			if e.state == stateEstablished && inodes[e.inode] && slices.Contains(sshPorts, e.local.Port()) {
				return Session{Client: e.remote, Server: e.local, PID: q, Source: "socket"}, nil
			}
		}
	}
	return Session{}, ErrNoSession
}

// socketInodes returns the inodes of the sockets pid has open.
func (p Proc) socketInodes(pid int) map[uint64]bool {
	dir := p.path(strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[uint64]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out[n] = true
			}
		}
	}
	return out
}

// TCP socket states in /proc/net/tcp.
const (
	stateEstablished = 0x01
	stateListen      = 0x0A
)

type tcpEntry struct {
	local, remote netip.AddrPort
	state         int
	inode         uint64
}

// tcpEntries reads the TCP sockets of pid's network namespace (pid 0:
// the reader's own, /proc/net).
func (p Proc) tcpEntries(pid int) []tcpEntry {
	base := p.path("net")
	if pid > 0 {
		base = p.path(strconv.Itoa(pid), "net")
	}
	var out []tcpEntry
	for _, name := range []string{"tcp", "tcp6"} {
		out = append(out, readTCP(filepath.Join(base, name))...)
	}
	return out
}

// readTCP parses one /proc/net/tcp or tcp6 file; lines it cannot read
// are skipped.
func readTCP(path string) []tcpEntry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []tcpEntry
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 10 {
			continue
		}
		local, err1 := hexAddrPort(fl[1])
		remote, err2 := hexAddrPort(fl[2])
		st, err3 := strconv.ParseUint(fl[3], 16, 8)
		inode, err4 := strconv.ParseUint(fl[9], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		out = append(out, tcpEntry{local: local, remote: remote, state: int(st), inode: inode})
	}
	return out
}

// hexAddrPort parses /proc/net/tcp's "0100007F:0016": the address as
// the kernel stores it (32-bit words in host order, little-endian
// here), the port in hex.
func hexAddrPort(s string) (netip.AddrPort, error) {
	a, pt, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || len(raw) != 4 && len(raw) != 16 {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i+4 <= len(raw); i += 4 { // each 32-bit word is little-endian
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(pt, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// SSHPorts returns the TCP ports SSH listens on in the reader's network
// namespace, sorted: those of listening sockets held by a process named
// sshd (or sshd-session), and those of configured that something listens
// on (an sshd under another name, or a test's stand-in).
func (p Proc) SSHPorts(configured []uint16) []uint16 {
	listening := map[uint64]uint16{} // inode → port
	var ports []uint16
	for _, e := range p.tcpEntries(0) {
		if e.state != stateListen {
			continue
		}
		listening[e.inode] = e.local.Port()
		if slices.Contains(configured, e.local.Port()) && !slices.Contains(ports, e.local.Port()) {
			ports = append(ports, e.local.Port())
		}
	}
	if len(listening) > 0 {
		for _, pid := range p.pids() {
			if c := p.Comm(pid); c != "sshd" && c != "sshd-session" {
				continue
			}
			for in := range p.socketInodes(pid) {
				if port, ok := listening[in]; ok && !slices.Contains(ports, port) {
					ports = append(ports, port)
				}
			}
		}
	}
	slices.Sort(ports)
	return ports
}

// pids lists the processes.
func (p Proc) pids() []int {
	ents, err := os.ReadDir(p.path())
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// IfaceOf returns the name of the interface of the reader's network
// namespace that has address a, "" when none has it.
func IfaceOf(a netip.Addr) string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if n, ok := ad.(*net.IPNet); ok {
				if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == a.Unmap() {
					return ifc.Name
				}
			}
		}
	}
	return ""
}
