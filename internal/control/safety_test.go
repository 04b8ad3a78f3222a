package control

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestChangeOf(t *testing.T) {
	for _, tc := range []struct {
		query   string
		force   bool
		confirm time.Duration
		bad     bool
	}{
		{"", false, 0, false},
		{"?force=true", true, 0, false},
		{"?confirm=60s", false, time.Minute, false},
		{"?dry_run=true&force=1&confirm=5m", true, 5 * time.Minute, false},
		{"?force=maybe", false, 0, true},
		{"?confirm=60", false, 0, true},
		{"?confirm=-1s", false, 0, true},
		{"?confirm=48h", false, 0, true},
	} {
		c, e := changeOf(httptest.NewRequest("POST", "/v1/rules"+tc.query, nil))
		if tc.bad {
			if e == nil || e.Code != CodeBadRequest {
				t.Errorf("%s: %v, want bad_request", tc.query, e)
			}
			continue
		}
		if e != nil || c.Force != tc.force || c.Confirm != tc.confirm {
			t.Errorf("%s: %+v, %v", tc.query, c, e)
		}
	}
}

func TestClientChangeQuery(t *testing.T) {
	c := &Client{Force: true, ConfirmWithin: time.Minute}
	for in, want := range map[string]string{
		"/v1/rules":              "/v1/rules?confirm=1m0s&force=true",
		"/v1/rules?dry_run=true": "/v1/rules?dry_run=true&confirm=1m0s&force=true",
	} {
		if got := c.changeQuery("POST", in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	if got := c.changeQuery("GET", "/v1/status"); got != "/v1/status" {
		t.Errorf("GET: %s", got)
	}
}
