package control

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/fwd-project/fwd/internal/lifecycle"
)

// ReloadOptions are the options of a reload (POST /v1/reload?revoke=true).
type ReloadOptions = lifecycle.ReloadOptions

// revokeQuery reads the revoke query parameter of POST /v1/reload and
// DELETE /v1/rules: true also cuts the established connections the
// rules left no longer allow.
func revokeQuery(r *http.Request) (bool, *Error) {
	v := r.URL.Query().Get("revoke")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest(fmt.Sprintf("bad revoke %q: expected true or false", v))
	}
	return b, nil
}

// ReloadWith asks the daemon to reload its rules file with options.
func (c *Client) ReloadWith(ctx context.Context, o ReloadOptions) (ReloadResult, error) {
	var res ReloadResult
	path := "/v1/reload"
	if o.Revoke {
		path += "?" + url.Values{"revoke": {"true"}}.Encode()
	}
	err := c.do(ctx, http.MethodPost, path, nil, &res)
	return res, err
}
