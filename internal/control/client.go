package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
)

// ErrUnreachable wraps the error of a client that could not reach the
// daemon (no socket, nothing listening).
var ErrUnreachable = errors.New("fwd is not reachable")

// ErrPermission wraps the error of a client the socket's permissions kept
// out. A peer the server refuses gets an *Error with CodeForbidden.
var ErrPermission = errors.New("permission denied")

// Client speaks the control API over a Unix socket.
type Client struct {
	socket string
	hc     *http.Client
	// Force and ConfirmWithin go with every change request (force=true,
	// confirm=DURATION): see safety.go.
	Force         bool
	ConfirmWithin time.Duration
}

// Dial returns a client for the socket at path ("" means DefaultSocket)
// after checking that something accepts connections there. Its errors
// wrap ErrUnreachable or ErrPermission.
func Dial(path string) (*Client, error) {
	if path == "" {
		path = DefaultSocket
	}
	c := &Client{socket: path}
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return nil, c.dialError(err)
		}
		return conn, nil
	}
	conn, err := dial(context.Background())
	if err != nil {
		return nil, err
	}
	conn.Close()
	c.hc = &http.Client{
		Transport: &http.Transport{
			DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
			MaxIdleConns:        2,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
			TLSHandshakeTimeout: time.Second,
		},
		Timeout: 2 * time.Minute,
	}
	return c, nil
}

func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("%w: cannot connect to %s: %s", ErrPermission, c.socket, socketFor(socketGroup(c.socket)))
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: no fwd listening on %s (is fwd running?)", ErrUnreachable, c.socket)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnreachable, c.socket, err)
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// do sends a request and decodes a 2xx reply into out; any other reply
// becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	path = c.changeQuery(method, path)
	if raw, ok := in.(rawBody); ok {
		body, in = bytes.NewReader(raw), nil
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://fwd"+path, body)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && (errors.Is(ue.Err, ErrUnreachable) || errors.Is(ue.Err, ErrPermission)) {
			return ue.Err
		}
		return fmt.Errorf("%w: %s %s: %v", ErrUnreachable, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%w: read reply: %v", ErrUnreachable, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		if err := json.Unmarshal(data, &eb); err != nil || eb.Error == nil {
			return &Error{Status: resp.StatusCode, Code: CodeInternal, Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
		}
		eb.Error.Status = resp.StatusCode
		return eb.Error
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode reply of %s %s: %w", method, path, err)
	}
	return nil
}

// Status returns the daemon's status with the numbered rules.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Rules returns the live rules, numbered.
func (c *Client) Rules(ctx context.Context) ([]RuleInfo, error) {
	var rs []RuleInfo
	err := c.do(ctx, http.MethodGet, "/v1/rules", nil, &rs)
	return rs, err
}

// Reload asks the daemon to reload its rules file.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var res ReloadResult
	err := c.do(ctx, http.MethodPost, "/v1/reload", nil, &res)
	return res, err
}

func dryQuery(dry bool) string {
	if dry {
		return "?dry_run=" + strconv.FormatBool(dry)
	}
	return ""
}

// Add adds rules; with dryRun it only says what would change.
func (c *Client) Add(ctx context.Context, req AddRequest, dryRun bool) (EditResult, error) {
	var res EditResult
	err := c.do(ctx, http.MethodPost, "/v1/rules"+dryQuery(dryRun), req, &res)
	return res, err
}

// Delete deletes rules; with dryRun it only says what would change.
func (c *Client) Delete(ctx context.Context, req DeleteRequest, dryRun bool) (EditResult, error) {
	var res EditResult
	err := c.do(ctx, http.MethodDelete, "/v1/rules"+dryQuery(dryRun), req, &res)
	return res, err
}

// AddACL adds an ACL entry; with dryRun it only says what would change.
func (c *Client) AddACL(ctx context.Context, req ACLAddRequest, dryRun bool) (EditResult, error) {
	var res EditResult
	err := c.do(ctx, http.MethodPost, "/v1/acl"+dryQuery(dryRun), req, &res)
	return res, err
}

// DeleteACL deletes ACL entries; with dryRun it only says what would
// change.
func (c *Client) DeleteACL(ctx context.Context, req ACLDeleteRequest, dryRun bool) (EditResult, error) {
	var res EditResult
	err := c.do(ctx, http.MethodDelete, "/v1/acl"+dryQuery(dryRun), req, &res)
	return res, err
}

// Check asks the live table about one connection.
func (c *Client) Check(ctx context.Context, q Query) (CheckResult, error) {
	var res CheckResult
	err := c.do(ctx, http.MethodPost, "/v1/check", q, &res)
	return res, err
}

// CheckKey asks the live table about a lookup key.
func (c *Client) CheckKey(ctx context.Context, k filter.Key) (CheckResult, error) {
	return c.Check(ctx, QueryOf(k))
}

// socketGroup is the group that may use the socket at path besides root
// (its group, when its mode lets the group write), or -1.
func socketGroup(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Gid == 0 || fi.Mode().Perm()&0o020 == 0 {
		return -1
	}
	return int(st.Gid)
}
