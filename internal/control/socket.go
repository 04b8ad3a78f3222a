package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listen creates the control socket and returns a Server ready to Serve.
// A socket left at the path by a process that is gone is removed; a
// socket something answers on, or any other kind of file, is an error.
// The socket is bound under a temporary name, given its mode (and group)
// and only then renamed into place, so it is never reachable with looser
// permissions.
func Listen(cfg ServerConfig) (*Server, error) {
	if cfg.Service == nil {
		return nil, errors.New("control: no service")
	}
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Log, gid: -1}
	mode := os.FileMode(0o600)
	if cfg.SocketGroup != "" {
		gid, err := lookupGroup(cfg.SocketGroup)
		if err != nil {
			return nil, err
		}
		s.gid = gid
		mode = 0o660
	}
	if cfg.SocketMode != 0 {
		mode = cfg.SocketMode
	}
	ln, err := listenAt(cfg.Socket, mode, s.gid)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if s.sockFI, err = os.Lstat(cfg.Socket); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s.ln = &credListener{UnixListener: ln, s: s}
	s.http = &http.Server{
		Handler:           s.withChange(s.routes()),
		ConnContext:       peerContext,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// listenAt binds a Unix socket at path with mode and group (gid -1:
// keep): bound under a temporary name, given its mode and group, and only
// then renamed into place, after removing a stale socket there.
func listenAt(path string, mode os.FileMode, gid int) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	err = os.Chmod(tmp, mode)
	if err == nil && gid >= 0 {
		err = os.Chown(tmp, -1, gid)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	return ln, nil
}

// removeStale removes a socket file nothing answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket: not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: another process is listening on it (is fwd already running?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s exists and cannot be probed: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", path, err)
	}
	return nil
}

func lookupGroup(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("control socket group: %w", err)
	}
	n, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("control socket group %s: gid %q: %w", name, g.Gid, err)
	}
	return n, nil
}

// credListener checks every connection's peer with SO_PEERCRED before
// handing it to the HTTP server; a refused peer gets a 403 JSON reply and
// is closed.
type credListener struct {
	*net.UnixListener
	s *Server
}

func (l *credListener) Accept() (net.Conn, error) {
	for {
		c, err := l.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		cred, err := peerCred(c)
		if err == nil {
			err = l.s.allow(cred)
		}
		if err == nil {
			return c, nil
		}
		go l.s.refuse(c, cred, err)
	}
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return nil, fmt.Errorf("peer credentials: %w", cerr)
	}
	return cred, nil
}

// allow decides whether a peer may use the API: root, this process's own
// user, or a member of the socket group (its primary group, or a
// supplementary group of the connecting process).
func (s *Server) allow(c *unix.Ucred) error {
	if c.Uid == 0 || int(c.Uid) == os.Geteuid() {
		return nil
	}
	if s.gid >= 0 {
		if int(c.Gid) == s.gid || slices.Contains(procGroups(int(c.Pid)), s.gid) {
			return nil
		}
		return fmt.Errorf("uid %d is not root and not in the socket group %s", c.Uid, groupWords(s.gid))
	}
	return fmt.Errorf("uid %d is not root", c.Uid)
}

// groupWords names a group for a person: "fwd (gid 990)", or "gid 990"
// when it has no name.
func groupWords(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return fmt.Sprintf("%s (gid %d)", g.Name, gid)
	}
	return fmt.Sprintf("gid %d", gid)
}

// socketFor says who may use the control socket and what a refused user
// can do about it: a group's member is told about the group, not to
// become root.
func socketFor(gid int) string {
	if gid < 0 {
		return "the control socket is for root: run fwctl as root (sudo), or start fwd with --socket-group GROUP to let a group in"
	}
	name := groupWords(gid)
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		name = g.Name
	}
	return fmt.Sprintf("the control socket is for root and the members of group %s: add the user to it (usermod -aG %s USER, then log in again) or run fwctl as root", groupWords(gid), name)
}

// procGroups reads a process's supplementary groups.
func procGroups(pid int) []int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Groups:"); ok {
			var out []int
			for _, w := range strings.Fields(rest) {
				if n, err := strconv.Atoi(w); err == nil {
					out = append(out, n)
				}
			}
			return out
		}
	}
	return nil
}

// refuse answers a refused connection's request with 403, logs it once
// and closes it. A connection closed before it sent anything (the probe
// of fwctl's Dial, made before each call) asked for nothing: it is
// logged at debug level only, so that one refused call is one line.
func (s *Server) refuse(c net.Conn, cred *unix.Ucred, why error) {
	defer c.Close()
	uid, pid := -1, -1
	if cred != nil {
		uid, pid = int(cred.Uid), int(cred.Pid)
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(io.LimitReader(c, 32<<10))
	req, err := http.ReadRequest(br)
	switch {
	case err == nil:
		io.Copy(io.Discard, io.LimitReader(req.Body, s.cfg.MaxBody))
		s.log.Warn("control socket: connection refused", "uid", uid, "pid", pid, "request", req.Method+" "+req.URL.Path, "reason", why)
	case errors.Is(err, io.EOF):
		s.log.Debug("control socket: connection refused", "uid", uid, "pid", pid, "reason", why)
		return
	default:
		s.log.Warn("control socket: connection refused", "uid", uid, "pid", pid, "reason", why)
	}
	body, _ := json.Marshal(errorBody{&Error{Code: CodeForbidden, Message: "permission denied: " + why.Error() + "; " + socketFor(s.gid)}})
	fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n", len(body)+1, body)
}
