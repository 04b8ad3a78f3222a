package control

import (
	"bufio"
	"bytes"
	"context"
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

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Socket is the path to listen on; "" means DefaultSocket. Its
	// directory is created (mode 0755) when missing.
	Socket string
	// SocketGroup, when set, is a group name or number whose members may
	// use the socket besides root; the socket is then mode 0660 and owned
	// by that group.
	SocketGroup string
	// SocketMode overrides the socket file's mode (0600, or 0660 with a
	// SocketGroup). The peer check applies whatever the mode.
	SocketMode os.FileMode
	// Service does the reloads and edits.
	Service *lifecycle.Service
	// Counters, when set, returns the daemon's counters for status.
	Counters func() map[string]uint64
	// RuleHits, when set, returns how many connections each rule of t
	// accepted, keyed by the accepting verdict (Accept, Dir, Group, Rule);
	// nil when the counts are not for t.
	RuleHits func(t *filter.Table) map[filter.Result]uint64
	// MaxBody bounds request bodies; 0 means DefaultMaxBody.
	MaxBody int64
	// Log receives refused connections and server errors.
	Log *slog.Logger
}

// Server serves the control API on a Unix socket.
type Server struct {
	cfg    ServerConfig
	log    *slog.Logger
	ln     *credListener
	http   *http.Server
	sockFI os.FileInfo // the socket file this server created
	gid    int         // the socket group, -1 for none
}

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
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := removeStale(cfg.Socket); err != nil {
		return nil, err
	}
	tmp := filepath.Join(filepath.Dir(cfg.Socket), fmt.Sprintf(".%s.%d.tmp", filepath.Base(cfg.Socket), os.Getpid()))
	os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Server, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(err)
	}
	if s.gid >= 0 {
		if err := os.Chown(tmp, -1, s.gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, cfg.Socket); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(cfg.Socket)
	if err != nil {
		return fail(err)
	}
	s.sockFI = fi
	s.ln = &credListener{UnixListener: ln, s: s}
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the socket's path.
func (s *Server) Addr() string { return s.cfg.Socket }

// Serve answers requests until Close. It returns nil after Close.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server, waiting up to the context's deadline for
// requests in flight, and removes the socket file if it is still the one
// this server created.
func (s *Server) Close(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if fi, serr := os.Lstat(s.cfg.Socket); serr == nil && os.SameFile(fi, s.sockFI) {
		os.Remove(s.cfg.Socket)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return s.http.Close()
	}
	return err
}

// removeStale removes a socket file nothing answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("control socket: %s exists and is not a socket: not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket: %s: another process is listening on it (is fwd already running?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket: %s exists and cannot be probed: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket: remove stale %s: %w", path, err)
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
		return fmt.Errorf("uid %d is not root and not in group %d", c.Uid, s.gid)
	}
	return fmt.Errorf("uid %d is not root", c.Uid)
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
	body, _ := json.Marshal(errorBody{&Error{Code: CodeForbidden, Message: "permission denied: " + why.Error() + " (the control socket is for root" + s.groupWords() + ")"}})
	fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n", len(body)+1, body)
}

func (s *Server) groupWords() string {
	if s.gid < 0 {
		return ""
	}
	return fmt.Sprintf(" and group %d", s.gid)
}

// routes maps each path to its handler per method. Unknown paths and
// methods get JSON errors too.
func (s *Server) routes() http.Handler {
	type route map[string]http.HandlerFunc
	table := map[string]route{
		"/v1/status": {"GET": s.handleStatus},
		"/v1/reload": {"POST": s.handleReload},
		"/v1/rules":  {"GET": s.handleRules, "POST": s.handleAdd, "DELETE": s.handleDelete},
		"/v1/check":  {"POST": s.handleCheck},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		rt, ok := table[path]
		if !ok {
			if n, found := strings.CutPrefix(path, "/v1/rules/"); found && n != "" {
				rt, ok = route{"DELETE": func(w http.ResponseWriter, r *http.Request) { s.handleDeleteNumber(w, r, n) }}, true
			}
		}
		if !ok {
			writeError(w, &Error{Code: CodeNotFound, Message: fmt.Sprintf("no such path %s: the API has /v1/status, /v1/reload, /v1/rules and /v1/check", path)})
			return
		}
		h, ok := rt[r.Method]
		if !ok {
			var allowed []string
			for m := range rt {
				allowed = append(allowed, m)
			}
			slices.Sort(allowed)
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, &Error{Code: CodeMethod, Message: fmt.Sprintf("%s %s: expected %s", r.Method, path, strings.Join(allowed, " or "))})
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{&Error{Code: CodeInternal, Message: "encode reply: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError replies with err, its status given by its code.
func writeError(w http.ResponseWriter, err error) {
	e := apiError(err)
	writeJSON(w, httpStatus(e.Code), errorBody{e})
}

func badRequest(msg string) *Error {
	return &Error{Code: CodeBadRequest, Message: msg}
}

// decode reads a JSON body strictly, within the size limit: unknown
// fields and repeated keys are refused, and a body over the limit names
// the value that ran past it.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) *Error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(s.cfg.MaxBody, data)
		}
		return badRequest("reading the request body: " + err.Error())
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("empty request body: expected a JSON object")
	}
	if dup, _, err := scanJSON(data); err == nil && dup != "" {
		return badRequest(fmt.Sprintf("bad JSON: duplicate key %s: give each key once", dup))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("bad JSON: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("bad JSON: more than one value in the body")
	}
	return nil
}

func dryRun(r *http.Request) (bool, *Error) {
	v := r.URL.Query().Get("dry_run")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest(fmt.Sprintf("bad dry_run %q: expected true or false", v))
	}
	return b, nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.status())
}

func (s *Server) status() Status {
	svc := s.cfg.Service
	st := Status{Status: "waiting", RulesPath: svc.Path(), DefaultIncoming: "deny", DefaultOutgoing: "deny", Reloads: svc.Stats()}
	if t := svc.Table(); t != nil && t.File() != nil {
		f := t.File()
		st.Status, st.Hash, st.Groups = "active", f.Hash, len(f.Groups)
		st.OpenEgress = lifecycle.OpenEgress(f)
		if len(st.OpenEgress) > 0 {
			st.DefaultOutgoing = "allow"
		}
	}
	if s.cfg.Counters != nil {
		st.Counters = s.cfg.Counters()
	}
	st.Rules = svc.Rules(s.cfg.RuleHits)
	return st
}

func (s *Server) handleRules(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Service.Rules(s.cfg.RuleHits))
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	res, err := s.cfg.Service.Reload(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleAdd(w http.ResponseWriter, r *http.Request) {
	dry, e := dryRun(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req AddRequest
	if e := s.decode(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	res, err := s.cfg.Service.Add(r.Context(), req, dry)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	dry, e := dryRun(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req DeleteRequest
	if e := s.decode(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	s.delete(w, r, req, dry)
}

func (s *Server) handleDeleteNumber(w http.ResponseWriter, r *http.Request, num string) {
	dry, e := dryRun(r)
	if e != nil {
		writeError(w, e)
		return
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		writeError(w, badRequest(fmt.Sprintf("bad rule number %q: expected 1 or more", num)))
		return
	}
	s.delete(w, r, DeleteRequest{Numbers: []int{n}}, dry)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, req DeleteRequest, dry bool) {
	res, err := s.cfg.Service.Delete(r.Context(), req, dry)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request) {
	var q Query
	if e := s.decode(w, r, &q); e != nil {
		writeError(w, e)
		return
	}
	k, err := q.Key()
	if err != nil {
		writeError(w, badRequest(err.Error()))
		return
	}
	t := s.cfg.Service.Table()
	if t == nil {
		writeError(w, &Error{Code: CodeUnavailable, Message: "no rules loaded yet: every new connection is dropped"})
		return
	}
	writeJSON(w, http.StatusOK, Check(t, k))
}

// Check answers a query from table t: the verdict, the accepting group
// and rule, the rule's number, the verdict in words and the rules' hash.
func Check(t *filter.Table, k filter.Key) CheckResult {
	v := t.Match(k)
	res := answerOf(t, v)
	res.Description = t.Describe(v)
	if f := t.File(); f != nil {
		res.Hash = f.Hash
		if res.Rule != nil {
			res.Number = lifecycle.NumberOf(f, rules.RuleRef{Group: int(v.Group), Dir: v.Dir, Index: int(v.Rule)})
		}
	}
	return res
}

// Answer answers a query from table t as one line of `fwctl check
// --batch` does: the verdict, the accepting group and rule only.
func Answer(t *filter.Table, k filter.Key) CheckResult {
	return answerOf(t, t.Match(k))
}

func answerOf(t *filter.Table, v filter.Result) CheckResult {
	res := CheckResult{Verdict: "drop"}
	if v.Accepted() {
		res.Verdict, res.Group = "accept", t.GroupName(v.Group)
		if v.Rule != filter.NoRule {
			rule := v.Rule
			res.Rule = &rule
		}
	}
	return res
}

// Key turns a query into a lookup key. It is the one reader of a query:
// POST /v1/check, `fwctl check --batch` and the words of `fwctl check`
// (made into a Query) all come here, so one bad query gets one error.
func (q Query) Key() (filter.Key, error) {
	var k filter.Key
	if q.Dir == "" {
		return k, errors.New("missing dir: expected \"in\" or \"out\"")
	}
	d, err := direction.Parse(q.Dir)
	if err != nil {
		return k, err
	}
	k.Dir = d
	peerField, peer := "src", q.Src
	if d == direction.Egress {
		peerField, peer = "dst", q.Dst
	}
	if q.Proto == "" {
		return k, errors.New("missing proto")
	}
	p, err := rules.ParseProto(q.Proto)
	if err != nil {
		return k, err
	}
	if p.All {
		return k, fmt.Errorf("bad protocol %q: a connection has one protocol, not all", q.Proto)
	}
	k.Proto = p.Num
	if peer == "" {
		return k, fmt.Errorf("missing %s: the peer's address", peerField)
	}
	if k.Peer, err = rules.ParseAddr(peer); err != nil {
		return k, err
	}
	if err := p.CheckFamily(k.Peer); err != nil {
		return k, err
	}
	other := q.Dst
	if k.Dir == direction.Egress {
		other = q.Src
	}
	if other != "" {
		if _, err := rules.ParseAddr(other); err != nil {
			return k, err
		}
	}
	if q.Sport != nil && (*q.Sport < 0 || *q.Sport > 65535) {
		return k, fmt.Errorf("bad sport %d: expected 0-65535", *q.Sport)
	}
	switch {
	case p.HasPorts():
		if q.Dport == nil {
			return k, fmt.Errorf("missing dport: %s needs a destination port", p)
		}
		if *q.Dport < 0 || *q.Dport > 65535 {
			return k, fmt.Errorf("bad dport %d: expected 0-65535", *q.Dport)
		}
		k.Port = uint16(*q.Dport)
	case p.IsICMP():
		if q.Type == nil {
			return k, fmt.Errorf("missing type: %s needs an icmp type", p)
		}
		if *q.Type < 0 || *q.Type > 255 {
			return k, fmt.Errorf("bad type %d: expected 0-255", *q.Type)
		}
		k.Type = uint8(*q.Type)
		if q.Code != nil {
			if *q.Code < 0 || *q.Code > 255 {
				return k, fmt.Errorf("bad code %d: expected 0-255", *q.Code)
			}
			k.Code = uint8(*q.Code)
		}
	}
	return k, nil
}

// QueryOf is the query for a lookup key.
func QueryOf(k filter.Key) Query {
	q := Query{Dir: k.Dir.String(), Proto: strconv.Itoa(int(k.Proto))}
	if k.Dir == direction.Egress {
		q.Dst = k.Peer.String()
	} else {
		q.Src = k.Peer.String()
	}
	switch k.Proto {
	case ipproto.TCP, ipproto.UDP:
		p := int(k.Port)
		q.Dport = &p
	case ipproto.ICMP, ipproto.ICMPv6:
		t, c := int(k.Type), int(k.Code)
		q.Type, q.Code = &t, &c
	}
	return q
}
