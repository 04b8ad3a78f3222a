package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/suggest"
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
	// Limits, when set, returns the rules of t with a limit and the
	// limit table's figures.
	Limits func(t *filter.Table) ([]LimitInfo, *LimitTable)
	// Audit, when set, returns status's audit section (nil when fwd
	// enforces its rules).
	Audit func() *Audit
	// WouldDrops, when set, returns the would-drop table (nil when
	// nothing was counted) and whether audit mode is on, for GET
	// /v1/suggest.
	WouldDrops func() (*suggest.Table, bool)
	// Queues, when set, returns each queue's health for status.
	Queues func() []QueueHealth
	// Fleet, when set, returns fleet mode's state for status.
	Fleet func() *FleetStatus
	// Containers, when set, returns the published container ports for
	// status (nil: none and nothing to say).
	Containers func(t *filter.Table) *Containers
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

// routes maps each path to its handler per method. Unknown paths and
// methods get JSON errors too.
func (s *Server) routes() http.Handler {
	type route map[string]http.HandlerFunc
	table := map[string]route{
		"/v1/status":   {"GET": s.handleStatus},
		"/v1/reload":   {"POST": s.handleReload},
		"/v1/rules":    {"GET": s.handleRules, "POST": s.handleAdd, "DELETE": s.handleDelete},
		"/v1/check":    {"POST": s.handleCheck},
		"/v1/acl":      {"POST": s.handleAddACL, "DELETE": s.handleDeleteACL},
		"/v1/history":  {"GET": s.handleHistory},
		"/v1/rollback": {"POST": s.handleRollback},
		"/v1/suggest":  {"GET": s.handleSuggest},
		"/v1/apply":    {"POST": s.handleApply},
		"/v1/confirm":  {"POST": s.handleConfirm},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		rt, ok := table[path]
		if !ok {
			if n, found := strings.CutPrefix(path, "/v1/rules/"); found && n != "" {
				rt, ok = route{"DELETE": func(w http.ResponseWriter, r *http.Request) { s.handleDeleteNumber(w, r, n) }}, true
			}
			if n, found := strings.CutPrefix(path, "/v1/acl/"); found && n != "" {
				rt, ok = route{"DELETE": func(w http.ResponseWriter, r *http.Request) { s.handleDeleteACLNumber(w, r, n) }}, true
			}
		}
		if !ok {
			writeError(w, &Error{Code: CodeNotFound, Message: fmt.Sprintf("no such path %s: the API has /v1/status, /v1/reload, /v1/rules, /v1/acl, /v1/check, /v1/history, /v1/rollback, /v1/suggest, /v1/apply and /v1/confirm", path)})
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
	if s.cfg.Audit != nil {
		st.Audit = s.cfg.Audit()
	}
	if safety := svc.Safety(); !safety.IsZero() {
		st.Safety = &safety
	}
	st.Rules = svc.Rules(s.cfg.RuleHits)
	st.ACL = svc.ACL(s.cfg.RuleHits)
	if t := svc.Table(); t != nil && s.cfg.Limits != nil {
		st.Limits, st.LimitTable = s.cfg.Limits(t)
	}
	if s.cfg.Queues != nil {
		st.Queues = s.cfg.Queues()
	}
	if s.cfg.Fleet != nil {
		st.Fleet = s.cfg.Fleet()
	}
	if t := svc.Table(); t != nil && s.cfg.Containers != nil {
		st.Containers = s.cfg.Containers(t)
	}
	return st
}

func (s *Server) handleRules(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Service.Rules(s.cfg.RuleHits))
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	revoke, e := revokeQuery(r)
	if e != nil {
		writeError(w, e)
		return
	}
	res, err := s.cfg.Service.ReloadWith(r.Context(), lifecycle.ReloadOptions{Revoke: revoke})
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
	if strings.HasPrefix(num, rules.IDPrefix) {
		s.delete(w, r, DeleteRequest{IDs: []string{num}}, dry) // Delete checks its spelling
		return
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		writeError(w, badRequest(fmt.Sprintf("bad rule number %q: expected 1 or more, or a rule ID", num)))
		return
	}
	s.delete(w, r, DeleteRequest{Numbers: []int{n}}, dry)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, req DeleteRequest, dry bool) {
	revoke, e := revokeQuery(r)
	if e != nil {
		writeError(w, e)
		return
	}
	req.Revoke = req.Revoke || revoke
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
	a, err := q.Ask()
	if err != nil {
		writeError(w, badRequest(err.Error()))
		return
	}
	t := s.cfg.Service.Table()
	if t == nil {
		writeError(w, &Error{Code: CodeUnavailable, Message: "no rules loaded yet: every new connection is dropped"})
		return
	}
	writeJSON(w, http.StatusOK, Check(t, a))
}

func (s *Server) handleAddACL(w http.ResponseWriter, r *http.Request) {
	dry, e := dryRun(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req ACLAddRequest
	if e := s.decode(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	res, err := s.cfg.Service.AddACL(r.Context(), req, dry)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleDeleteACL(w http.ResponseWriter, r *http.Request) {
	dry, e := dryRun(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req ACLDeleteRequest
	if e := s.decode(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	s.deleteACL(w, r, req, dry)
}

// handleDeleteACLNumber is DELETE /v1/acl/N (an ingress entry) and
// DELETE /v1/acl/N?dir=out.
func (s *Server) handleDeleteACLNumber(w http.ResponseWriter, r *http.Request, num string) {
	dry, e := dryRun(r)
	if e != nil {
		writeError(w, e)
		return
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		writeError(w, badRequest(fmt.Sprintf("bad acl entry number %q: expected %d-%d", num, rules.MinACLNumber, rules.MaxACLNumber)))
		return
	}
	s.deleteACL(w, r, ACLDeleteRequest{Dir: r.URL.Query().Get("dir"), Numbers: []int{n}}, dry)
}

func (s *Server) deleteACL(w http.ResponseWriter, r *http.Request, req ACLDeleteRequest, dry bool) {
	res, err := s.cfg.Service.DeleteACL(r.Context(), req, dry)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
