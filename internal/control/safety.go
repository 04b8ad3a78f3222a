package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/lifecycle"
)

// The control socket's part of changing rules safely: every request
// carries its peer (SO_PEERCRED) into the lifecycle, whose lockout
// guard reads the peer's SSH session; change requests take force=true
// (a lockout warns instead of refusing) and confirm=DURATION (roll back
// unless POST /v1/confirm comes in time) as query parameters, like
// dry_run; POST /v1/apply replaces the rules file with the body.

// Types of the safety API.
type (
	SafetyStatus  = lifecycle.SafetyStatus
	Pending       = lifecycle.Pending
	ConfirmResult = lifecycle.ConfirmResult
)

// Codes of the lockout guard and confirmed changes.
const (
	CodeLockout        = lifecycle.CodeLockout        // the change would drop new ssh from the admin's address
	CodeConfirmPending = lifecycle.CodeConfirmPending // a confirmed change waits for confirmation
)

// withChange reads force and confirm, puts the lifecycle.Change in the
// request's context and lets the service note the peer (its SSH
// session, for the failsafe), then serves the request.
func (s *Server) withChange(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, e := changeOf(r)
		if e != nil {
			writeError(w, e)
			return
		}
		ctx := lifecycle.WithChange(r.Context(), c)
		s.cfg.Service.NotePeer(ctx)
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func changeOf(r *http.Request) (*lifecycle.Change, *Error) {
	c := &lifecycle.Change{}
	if p, ok := lifecycle.PeerFrom(r.Context()); ok {
		c.Peer = &p
	}
	q := r.URL.Query()
	if v := q.Get("force"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badRequest(fmt.Sprintf("bad force %q: expected true or false", v))
		}
		c.Force = b
	}
	if v := q.Get("confirm"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > lifecycle.MaxConfirm {
			return nil, badRequest(fmt.Sprintf("bad confirm %q: expected a duration such as 60s or 5m, more than 0 and at most %s", v, lifecycle.MaxConfirm))
		}
		c.Confirm = d
	}
	return c, nil
}

// handleApply is POST /v1/apply: the body (YAML, up to the daemon's
// --max-file-bytes) replaces the rules file.
func (s *Server) handleApply(w http.ResponseWriter, r *http.Request) {
	dry, e := dryRun(r)
	if e != nil {
		writeError(w, e)
		return
	}
	limit := s.cfg.Service.MaxFileBytes()
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("rules file over the limit of %d bytes (fwd --max-file-bytes)", limit)})
			return
		}
		writeError(w, badRequest("reading the request body: "+err.Error()))
		return
	}
	res, err := s.cfg.Service.Apply(r.Context(), data, dry)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handleConfirm is POST /v1/confirm.
func (s *Server) handleConfirm(w http.ResponseWriter, r *http.Request) {
	res, err := s.cfg.Service.Confirm(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// changeQuery adds the client's force and confirm to a change
// request's path.
func (c *Client) changeQuery(method, path string) string {
	if method == http.MethodGet || !c.Force && c.ConfirmWithin <= 0 {
		return path
	}
	q := url.Values{}
	if c.Force {
		q.Set("force", "true")
	}
	if c.ConfirmWithin > 0 {
		q.Set("confirm", c.ConfirmWithin.String())
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + q.Encode()
}

// Apply replaces the rules file with data; with dryRun it only says what
// would change.
func (c *Client) Apply(ctx context.Context, data []byte, dryRun bool) (EditResult, error) {
	var res EditResult
	err := c.do(ctx, http.MethodPost, "/v1/apply"+dryQuery(dryRun), rawBody(data), &res)
	return res, err
}

// Confirm keeps the pending confirmed change.
func (c *Client) Confirm(ctx context.Context) (ConfirmResult, error) {
	var res ConfirmResult
	err := c.do(ctx, http.MethodPost, "/v1/confirm", nil, &res)
	return res, err
}

// rawBody is a request body sent as it is (YAML), not as JSON.
type rawBody []byte
