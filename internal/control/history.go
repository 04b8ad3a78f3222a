package control

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/suggest"
)

// The change history (GET /v1/history, POST /v1/rollback) and audit
// mode's suggestions (GET /v1/suggest).

// HistoryEntry is one entry of GET /v1/history.
type HistoryEntry = lifecycle.HistoryEntry

// Peer is the process at the other end of the control socket.
type Peer = lifecycle.Peer

// RollbackRequest is the body of POST /v1/rollback.
type RollbackRequest struct {
	Entry int `json:"entry"` // the history entry whose rules to restore; 0: roll back the change pending confirmation now
}

// Audit is status's audit section: present when fwd runs in audit mode.
type Audit struct {
	// Enforcing is false in audit mode: nothing is dropped.
	Enforcing bool   `json:"enforcing"`
	Why       string `json:"why"` // e.g. "fwd --audit"
	// WouldDrop counts the flows the rules would have dropped, by
	// reason (no-match, acl-deny, limited, undecodable).
	WouldDrop map[string]uint64 `json:"would_drop"`
}

// Suggestions is the reply of GET /v1/suggest.
type Suggestions struct {
	Audit bool `json:"audit"` // the daemon is in audit mode now
	// Bits4 and Bits6 are the prefix lengths the suggestions are grouped
	// at (the daemon counts at its own; coarser ones are asked with
	// ?bits4=N&bits6=N).
	Bits4    int             `json:"bits4"`
	Bits6    int             `json:"bits6"`
	Overflow uint64          `json:"overflow"` // would-drops the daemon's table had no room for
	Rules    []suggest.Entry `json:"rules"`
}

// peerContext is the HTTP server's ConnContext: it records who is at the
// other end of the connection (SO_PEERCRED and /proc/PID/cmdline), so
// that the change history names them.
func peerContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	cred, err := peerCred(uc)
	if err != nil {
		return ctx
	}
	return lifecycle.WithPeer(ctx, Peer{UID: int(cred.Uid), PID: int(cred.Pid), Command: cmdline(int(cred.Pid))})
}

// cmdline reads a process's command line, its words joined by spaces
// and clipped at 512 bytes; "" when it cannot be read.
func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	s := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
	if len(s) > 512 {
		s = s[:512] + "..."
	}
	return s
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	es, err := s.cfg.Service.History()
	if err != nil {
		writeError(w, err)
		return
	}
	if es == nil {
		es = []HistoryEntry{}
	}
	writeJSON(w, http.StatusOK, es)
}

func (s *Server) handleRollback(w http.ResponseWriter, r *http.Request) {
	dry, e := dryRun(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req RollbackRequest
	if e := s.decode(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	if req.Entry < 0 {
		writeError(w, badRequest(fmt.Sprintf("bad entry %d: expected a history entry number (fwctl history), or 0 for the change pending confirmation", req.Entry)))
		return
	}
	rollback := s.cfg.Service.Rollback
	if req.Entry == 0 {
		rollback = func(ctx context.Context, _ int, dry bool) (lifecycle.EditResult, error) {
			return s.cfg.Service.RollbackPending(ctx, dry)
		}
	}
	res, err := rollback(r.Context(), req.Entry, dry)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleSuggest(w http.ResponseWriter, r *http.Request) {
	if s.cfg.WouldDrops == nil {
		writeError(w, &Error{Code: CodeUnavailable, Message: "this fwd counts no would-drops"})
		return
	}
	t, audit := s.cfg.WouldDrops()
	if t == nil {
		writeError(w, &Error{Code: CodeUnavailable, Message: "fwd is not in audit mode and has counted no would-drops: start it with --audit, or use fwctl replay --suggest on a capture"})
		return
	}
	o := t.Options()
	for _, q := range []struct {
		name string
		max  int
		dst  *int
	}{{"bits4", 32, &o.Bits4}, {"bits6", 128, &o.Bits6}} {
		if v := r.URL.Query().Get(q.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > q.max {
				writeError(w, badRequest(fmt.Sprintf("bad %s %q: expected 0-%d", q.name, v, q.max)))
				return
			}
			*q.dst = n
		}
	}
	rs := suggest.Aggregate(t.Entries(), o)
	// A finer length than counted keeps the counted one: say which.
	if to := t.Options(); o.Bits4 > to.Bits4 {
		o.Bits4 = to.Bits4
	}
	if to := t.Options(); o.Bits6 > to.Bits6 {
		o.Bits6 = to.Bits6
	}
	writeJSON(w, http.StatusOK, Suggestions{Audit: audit, Bits4: o.Bits4, Bits6: o.Bits6, Overflow: t.Overflow(), Rules: rs})
}

// History returns the change history, oldest first.
func (c *Client) History(ctx context.Context) ([]HistoryEntry, error) {
	var es []HistoryEntry
	err := c.do(ctx, http.MethodGet, "/v1/history", nil, &es)
	return es, err
}

// Rollback restores the rules as of history entry n.
func (c *Client) Rollback(ctx context.Context, n int, dryRun bool) (EditResult, error) {
	var res EditResult
	err := c.do(ctx, http.MethodPost, "/v1/rollback"+dryQuery(dryRun), RollbackRequest{Entry: n}, &res)
	return res, err
}

// Suggest returns the daemon's would-drops as proposed rules, grouped at
// bits4 and bits6 (0: the daemon's own lengths).
func (c *Client) Suggest(ctx context.Context, bits4, bits6 int) (Suggestions, error) {
	q := url.Values{}
	if bits4 > 0 {
		q.Set("bits4", strconv.Itoa(bits4))
	}
	if bits6 > 0 {
		q.Set("bits6", strconv.Itoa(bits6))
	}
	path := "/v1/suggest"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var res Suggestions
	err := c.do(ctx, http.MethodGet, path, nil, &res)
	return res, err
}
