package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/kernel"
	"github.com/fwd-project/fwd/internal/netns"
	"github.com/fwd-project/fwd/internal/nfq"
)

// Addresses. The server has one address per family; the client has two,
// so that a rule can allow one and not the other.
const (
	server4  = "198.18.0.1"
	client4  = "198.18.0.2"
	client4b = "198.18.0.3"
	server6  = "2001:db8::1"
	client6  = "2001:db8::2"
	client6b = "2001:db8::3"
)

// Shared by every test: built or made once in TestMain.
var (
	fwdBin   string // the daemon
	certDir  string // cert.pem and key.pem for nginx's 443
	repoRoot string
	setupErr error // why TestMain could not prepare; every test fails with it
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(echoEnv); addr != "" {
		os.Exit(echoProcess(addr)) // a helper process, see echoServeProcess
	}
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // every test skips (or fails under CI=true)
		}
		// The tests mostly wait (for timeouts that prove a drop): run
		// more of them at once than there are CPUs, unless told.
		if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == fmt.Sprint(runtime.GOMAXPROCS(0)) {
			f.Value.Set("8")
		}
		dir, err := os.MkdirTemp("", "fwd-e2e-")
		if err != nil {
			setupErr = err
			return m.Run()
		}
		defer os.RemoveAll(dir)
		setupErr = setup(dir)
		return m.Run()
	}()
	os.Exit(code)
}

func setup(dir string) error {
	for _, tool := range []string{"ip", "iptables-restore", "ip6tables-restore", "nginx", "curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (run make deps): %w", tool, err)
		}
	}
	goCmd := goCommand()
	out, err := exec.Command(goCmd, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	repoRoot = filepath.Dir(strings.TrimSpace(string(out)))
	fwdBin = filepath.Join(dir, "fwd")
	args := []string{"build", "-o", fwdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goCmd, append(args, "./cmd/fwd")...)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/fwd: %w\n%s", err, out)
	}
	certDir = dir
	gen := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-days", "1", "-subj", "/CN=fwd-e2e",
		"-keyout", filepath.Join(dir, "key.pem"), "-out", filepath.Join(dir, "cert.pem"))
	if out, err := gen.CombinedOutput(); err != nil {
		return fmt.Errorf("openssl: %w\n%s", err, out)
	}
	return nil
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("end-to-end tests need root; CI=true forbids skipping")
		}
		t.Skip("end-to-end tests need root (network namespaces, iptables, nginx)")
	}
	if setupErr != nil {
		t.Fatalf("setup: %v", setupErr)
	}
}

// env is a client and a server namespace joined by a veth pair.
type env struct {
	t              *testing.T
	client, server string
	dir            string
	// bin, when set, is the fwd binary launchFwd runs (fwdBin when not).
	bin string
}

func newEnv(t *testing.T) *env {
	requireRoot(t)
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	e := &env{t: t, client: "fwdc-" + id, server: "fwds-" + id, dir: t.TempDir()}
	for _, ns := range []string{e.client, e.server} {
		if err := netns.Add(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deleteNetns(ns) })
	}
	p := netip.MustParsePrefix
	if err := netns.AddVeth(
		netns.End{NS: e.client, Name: "eth0", Addrs: []netip.Prefix{p(client4 + "/24"), p(client4b + "/24"), p(client6 + "/64"), p(client6b + "/64")}},
		netns.End{NS: e.server, Name: "eth0", Addrs: []netip.Prefix{p(server4 + "/24"), p(server6 + "/64")}},
	); err != nil {
		t.Fatal(err)
	}
	return e
}

// deleteNetns kills whatever still runs in ns, then deletes it.
func deleteNetns(ns string) {
	netns.Delete(ns)
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs name in namespace ns and returns its combined output.
func inNS(ns, name string, args ...string) (string, error) {
	out, err := netns.Command(ns, name, args...).CombinedOutput()
	return string(out), err
}

// do runs fn on an OS thread inside namespace ns: sockets it opens belong
// to ns and keep working from any thread afterwards.
func do(ns string, fn func() error) error {
	return netns.Do(ns, fn)
}

func dialIn(ns, network, laddr, raddr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := do(ns, func() error {
		d := net.Dialer{Timeout: timeout}
		if laddr != "" {
			a, err := net.ResolveTCPAddr(network, net.JoinHostPort(laddr, "0"))
			if err != nil {
				return err
			}
			d.LocalAddr = a
		}
		var err error
		c, err = d.Dial(network, raddr)
		return err
	})
	return c, err
}

func listenIn(t *testing.T, ns, network, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := do(ns, func() (err error) { ln, err = net.Listen(network, addr); return }); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func listenUDPIn(t *testing.T, ns, addr string) *net.UDPConn {
	t.Helper()
	var c net.PacketConn
	if err := do(ns, func() (err error) { c, err = net.ListenPacket("udp", addr); return }); err != nil {
		t.Fatalf("listen udp %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// echoServe answers every connection of ln by echoing what it reads.
func echoServe(ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
}

// echoEnv, set, makes the test binary an echo server on its address
// instead of running tests (see echoServeProcess).
const echoEnv = "FWD_E2E_ECHO"

// echoServeProcess runs an echo server on addr in namespace ns, in a
// process of its own (this test binary again): a socket it accepts is
// not the test process's. The lockout guard looks for an SSH session
// among the sockets of fwctl's parents, and the test process is one.
func echoServeProcess(t *testing.T, ns, addr string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, self)
	cmd.Env = append(os.Environ(), echoEnv+"="+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "listening" {
		t.Fatalf("echo server on %s in %s: %q, %v", addr, ns, line, err)
	}
}

// echoProcess is the helper process's main: listen, say so, echo.
func echoProcess(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("listening")
	echoServe(ln)
	select {}
}

// url builds a URL for port on the server's address of the family.
func url(scheme, host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s://%s:%d/", scheme, host, port)
}

// curl fetches u from the client namespace, from source address src when
// given, giving up after max (a drop is silent: a timeout).
func (e *env) curl(u, src string, max time.Duration) (string, error) {
	secs := fmt.Sprintf("%.1f", max.Seconds())
	args := []string{"-sS", "-k", "--max-time", secs, "--connect-timeout", secs}
	if src != "" {
		args = append(args, "--interface", src)
	}
	return inNS(e.client, "curl", append(args, u)...)
}

func (e *env) mustPass(u, src string) {
	e.t.Helper()
	out, err := e.curl(u, src, 10*time.Second) // a pass does not wait for it
	if err != nil {
		e.t.Errorf("curl %s from %s: %v (%s), want it to pass", u, orAny(src), err, strings.TrimSpace(out))
		return
	}
	if !strings.HasPrefix(out, "ok ") {
		e.t.Errorf("curl %s: unexpected body %q", u, out)
	}
}

func (e *env) mustDrop(u, src string) {
	e.t.Helper()
	out, err := e.curl(u, src, 2*time.Second)
	if err == nil {
		e.t.Errorf("curl %s from %s passed (%q), want it dropped", u, orAny(src), out)
		return
	}
	// curl exits 28 on a timeout; a refused connection (7) would mean a
	// reset, which a security group never sends.
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() != 28 {
		e.t.Errorf("curl %s from %s: exit %d (%s), want 28 (timeout: silent drop)", u, orAny(src), ee.ExitCode(), strings.TrimSpace(out))
	}
}

func orAny(s string) string {
	if s == "" {
		return "the default address"
	}
	return s
}

// startNginx runs nginx in the server namespace on 22, 80, 443 (TLS) and
// 8080, both families, answering "ok PORT"; it returns once all answer.
func (e *env) startNginx() {
	e.t.Helper()
	dir := filepath.Join(e.dir, "nginx")
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	var listens strings.Builder
	for _, p := range []string{"22", "80", "443 ssl", "8080"} {
		fmt.Fprintf(&listens, "    listen %s;\n    listen [::]:%s;\n", p, p)
	}
	conf := fmt.Sprintf(`user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_timeout 120s;
  keepalive_requests 100000;
  ssl_certificate %[2]s/cert.pem;
  ssl_certificate_key %[2]s/key.pem;
  server {
%[3]s    location / { default_type text/plain; return 200 "ok $server_port\n"; }
  }
}
`, dir, certDir, listens.String())
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", e.server, "nginx", "-p", dir, "-c", confPath, "-g", "daemon off;")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that the workers die with the master.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	// Without fwd everything must answer, or a "dropped" later means
	// nothing.
	for _, u := range []string{url("http", server4, 80), url("https", server4, 443), url("http", server4, 8080), url("http", server4, 22),
		url("http", server6, 80), url("https", server6, 443), url("http", server6, 8080)} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			body, err := e.curl(u, "", 2*time.Second)
			if err == nil && strings.HasPrefix(body, "ok ") {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("nginx does not answer %s before fwd starts: %v %s\nnginx: %s", u, err, body, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// writeRules writes a rules file into the test's directory.
func (e *env) writeRules(name, body string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// iptablesSave returns both families' normalized iptables-save in ns.
func iptablesSave(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, err := inNS(ns, tool)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tool, err, out)
		}
		b.WriteString("== " + tool + "\n" + kernel.Normalize(out))
	}
	return b.String()
}

// hostRules stands for a host firewall that fwd must leave untouched.
const hostRules = `*filter
:host-in - [0:0]
-A INPUT -p tcp --dport 9999 -j host-in
-A host-in -j ACCEPT
COMMIT
*mangle
-A PREROUTING -p udp --dport 9999 -j MARK --set-mark 0x1
COMMIT
`

func (e *env) addHostRules() {
	e.t.Helper()
	for _, tool := range []string{"iptables-restore", "ip6tables-restore"} {
		cmd := exec.Command("ip", "netns", "exec", e.server, tool, "--noflush")
		cmd.Stdin = strings.NewReader(hostRules)
		if out, err := cmd.CombinedOutput(); err != nil {
			e.t.Fatalf("%s: %v\n%s", tool, err, out)
		}
	}
}

// queuedPackets is the number of packets the kernel has queued in the
// server namespace so far, over all queues.
func (e *env) queuedPackets() uint64 {
	e.t.Helper()
	out, err := inNS(e.server, "cat", nfq.ProcPath)
	if err != nil {
		e.t.Fatalf("read %s: %v %s", nfq.ProcPath, err, out)
	}
	stats, err := nfq.ParseKernelStats(strings.NewReader(out))
	if err != nil {
		e.t.Fatal(err)
	}
	var n uint64
	for _, s := range stats {
		n += uint64(s.IDSequence)
	}
	return n
}

// fwd is a running daemon.
type fwd struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
	err   error // Wait's, once done is closed
}

// socket is where this environment's fwd serves fwctl.
func (e *env) socket() string { return filepath.Join(e.dir, "fwd.sock") }

// startFwd runs fwd in the server namespace, with its control socket in
// the test's directory, and waits until it says it is running.
func (e *env) startFwd(args ...string) *fwd {
	e.t.Helper()
	f := e.launchFwd(append([]string{"--socket", e.socket()}, args...)...)
	f.waitLog(0, "control socket")
	return f
}

// launchFwd runs fwd in the server namespace with args as given, and
// waits for nothing: for a fwd that may refuse to start. Its log is
// collected, and shown when the test fails; the test's end kills it.
func (e *env) launchFwd(args ...string) *fwd {
	e.t.Helper()
	return e.launchFwdIn(e.server, args...)
}

// launchFwdIn is launchFwd in namespace ns.
func (e *env) launchFwdIn(ns string, args ...string) *fwd {
	e.t.Helper()
	if slices.Contains(args, defaultRules()) {
		// The shipped file is in the source tree: keep fwd's change
		// history out of it.
		args = append(args, "--history-entries", "0")
	}
	bin := fwdBin
	if e.bin != "" {
		bin = e.bin
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	f := &fwd{t: e.t, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, sc.Text())
			f.mu.Unlock()
		}
		f.err = cmd.Wait()
		close(f.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-f.done:
		default:
			cmd.Process.Kill()
			<-f.done
		}
		if e.t.Failed() {
			e.t.Logf("fwd log:\n%s", f.log())
		}
	})
	return f
}

func (f *fwd) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.lines, "\n")
}

// mark returns the number of log lines so far, for waitLog.
func (f *fwd) mark() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.lines)
}

// waitLog waits for a log line containing substr after line from.
func (f *fwd) waitLog(from int, substr string) string {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		f.mu.Lock()
		for _, l := range f.lines[min(from, len(f.lines)):] {
			if strings.Contains(l, substr) {
				f.mu.Unlock()
				return l
			}
		}
		f.mu.Unlock()
		select {
		case <-f.done:
			f.t.Fatalf("fwd exited (%v) before logging %q:\n%s", f.err, substr, f.log())
		default:
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("fwd did not log %q:\n%s", substr, f.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fwd) signal(sig syscall.Signal) {
	f.t.Helper()
	if err := f.cmd.Process.Signal(sig); err != nil {
		f.t.Fatalf("signal %v: %v", sig, err)
	}
}

// reload sends SIGHUP and waits for the line that reports the outcome.
func (f *fwd) reload(want string) string {
	f.t.Helper()
	from := f.mark()
	f.signal(syscall.SIGHUP)
	return f.waitLog(from, want)
}

// stop sends SIGTERM and checks a clean exit.
func (f *fwd) stop() {
	f.t.Helper()
	f.signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		f.t.Fatalf("fwd did not stop on SIGTERM:\n%s", f.log())
	}
	if f.err != nil {
		f.t.Errorf("fwd exit after SIGTERM: %v, want 0\n%s", f.err, f.log())
	}
}

// kill9 kills fwd without giving it a chance to clean up.
func (f *fwd) kill9() {
	f.t.Helper()
	f.signal(syscall.SIGKILL)
	<-f.done
}

// httpConn is a long-lived HTTP/1.1 connection (keep-alive).
type httpConn struct {
	c  net.Conn
	br *bufio.Reader
}

func (e *env) openHTTP(network, host string, port int) *httpConn {
	e.t.Helper()
	c, err := dialIn(e.client, network, "", net.JoinHostPort(host, fmt.Sprint(port)), 2*time.Second)
	if err != nil {
		e.t.Fatalf("connect %s:%d: %v", host, port, err)
	}
	e.t.Cleanup(func() { c.Close() })
	h := &httpConn{c: c, br: bufio.NewReader(c)}
	if err := h.get(); err != nil {
		e.t.Fatalf("first request on %s:%d: %v", host, port, err)
	}
	return h
}

// get sends one request on the connection and reads the answer.
func (h *httpConn) get() error {
	h.c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(h.c, "GET / HTTP/1.1\r\nHost: fwd\r\n\r\n"); err != nil {
		return err
	}
	status, err := h.br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.Contains(status, " 200 ") {
		return fmt.Errorf("status %q", status)
	}
	length := -1
	for {
		line, err := h.br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length:"); ok {
			fmt.Sscan(strings.TrimSpace(v), &length)
		}
	}
	if length < 0 {
		return errors.New("no content-length")
	}
	_, err = io.CopyN(io.Discard, h.br, int64(length))
	return err
}

// ping sends one ICMP or ICMPv6 echo request from the client namespace to
// dst and waits up to wait for the reply.
func (e *env) ping(dst string, wait time.Duration) error {
	ip, err := netip.ParseAddr(dst)
	if err != nil {
		return err
	}
	network, req, reply := "ip4:icmp", byte(8), byte(0)
	if ip.Is6() {
		network, req, reply = "ip6:ipv6-icmp", 128, 129
	}
	var c net.PacketConn
	if err := do(e.client, func() (err error) { c, err = net.ListenPacket(network, ""); return }); err != nil {
		return err
	}
	defer c.Close()
	id := uint16(os.Getpid())
	msg := []byte{req, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'f', 'w', 'd'}
	if ip.Is4() {
		// ICMPv4 checksum (the kernel computes ICMPv6's).
		var sum uint32
		for i := 0; i+1 < len(msg); i += 2 {
			sum += uint32(msg[i])<<8 | uint32(msg[i+1])
		}
		if len(msg)%2 == 1 {
			sum += uint32(msg[len(msg)-1]) << 8
		}
		for sum > 0xffff {
			sum = sum>>16 + sum&0xffff
		}
		cs := ^uint16(sum)
		msg[2], msg[3] = byte(cs>>8), byte(cs)
	}
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: net.IP(ip.AsSlice())}); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		if n >= 8 && buf[0] == reply && binary.BigEndian.Uint16(buf[4:]) == id && from.String() == ip.String() {
			return nil
		}
	}
}
