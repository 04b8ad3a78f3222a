package control

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestRequestChecks (issue 16, bug 6): a repeated JSON key is refused and
// named, a body over the limit names the value that ran past it, a field
// over its own limit is named, and hidden characters are refused in group
// names and descriptions. Nothing is written.
func TestRequestChecks(t *testing.T) {
	fx := newFixture(t, baseRules)
	srv, _ := fx.serve(t, ServerConfig{MaxBody: 4096})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", srv.Addr())
	}}}
	defer hc.CloseIdleConnections()
	rule := func(desc string) string {
		b, _ := json.Marshal(desc)
		return `{"rules":[{"proto":"tcp","ports":["8080"],"description":` + string(b) + `}]}`
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     Code
		msg                      string // part of the message
	}{
		{"duplicate top-level key", "POST", "/v1/rules?dry_run=1", `{"group":"a","rules":[{"proto":"tcp","ports":["22"]}],"group":"b"}`,
			400, CodeBadRequest, "duplicate key group"},
		{"duplicate key in a rule", "POST", "/v1/rules?dry_run=1", `{"rules":[{"proto":"tcp","ports":["22"]},{"proto":"tcp","ports":["22"],"proto":"udp"}]}`,
			400, CodeBadRequest, "duplicate key rules[1].proto"},
		{"duplicate key in icmp", "POST", "/v1/rules?dry_run=1", `{"rules":[{"proto":"icmp","icmp":{"type":8,"type":0}}]}`,
			400, CodeBadRequest, "duplicate key rules[0].icmp.type"},
		{"duplicate key in a check", "POST", "/v1/check", `{"dir":"in","proto":"tcp","src":"198.18.0.1","dport":80,"dport":22}`,
			400, CodeBadRequest, "duplicate key dport"},
		{"duplicate key in a delete", "DELETE", "/v1/rules?dry_run=1", `{"numbers":[1],"numbers":[2]}`,
			400, CodeBadRequest, "duplicate key numbers"},
		{"description past the body limit", "POST", "/v1/rules", rule(strings.Repeat("x", 5000)),
			413, CodeTooLarge, "request body over 4096 bytes: rules[0].description runs past the limit (a description takes at most 255 characters)"},
		{"group past the body limit", "POST", "/v1/rules", `{"group":"` + strings.Repeat("g", 5000) + `"}`,
			413, CodeTooLarge, "group runs past the limit (a group takes at most 255 characters)"},
		{"description over its limit", "POST", "/v1/rules", rule(strings.Repeat("x", 300)),
			400, CodeBadRequest, "rule 1: bad description: description is 300 characters long: expected at most 255"},
		{"group over its limit", "POST", "/v1/rules", `{"group":"` + strings.Repeat("g", 300) + `","rules":[{"proto":"tcp","ports":["22"]}]}`,
			400, CodeBadRequest, "bad group: group name is 300 characters long: expected at most 255"},
		{"group with a right-to-left override", "POST", "/v1/rules", `{"group":"web\u202e","rules":[{"proto":"tcp","ports":["22"]}]}`,
			400, CodeBadRequest, "bad group: group name holds U+202E"},
		{"description with an isolate", "POST", "/v1/rules", rule("ssh\u2067"),
			400, CodeBadRequest, "bad description: description holds U+2067"},
		{"description with a newline", "POST", "/v1/rules", rule("a\nb"),
			400, CodeBadRequest, "U+000A"},
		{"blank group", "POST", "/v1/rules", `{"group":"  ","rules":[{"proto":"tcp","ports":["22"]}]}`,
			400, CodeBadRequest, "group name is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://fwd"+tc.path, strings.NewReader(tc.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var eb struct{ Error *Error }
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
				t.Fatalf("%d %s: not an error reply", resp.StatusCode, b)
			}
			if resp.StatusCode != tc.status || eb.Error.Code != tc.code || !strings.Contains(eb.Error.Message, tc.msg) {
				t.Errorf("%d %s %q; want %d %s with %q", resp.StatusCode, eb.Error.Code, eb.Error.Message, tc.status, tc.code, tc.msg)
			}
		})
	}
	if data, err := os.ReadFile(fx.path); err != nil || string(data) != baseRules {
		t.Errorf("rules file changed: %v\n%s", err, data)
	}
	// Within the limits, in characters: 255 two-byte characters pass.
	req, _ := http.NewRequest("POST", "http://fwd/v1/rules?dry_run=1", strings.NewReader(rule(strings.Repeat("é", 255))))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a description of 255 characters (510 bytes): %d %s", resp.StatusCode, b)
	}
}

// TestScanJSON: the paths scanJSON names.
func TestScanJSON(t *testing.T) {
	tests := []struct {
		body, dup, where string
		complete         bool
	}{
		{`{"a":1,"b":[1,2,{"c":3}]}`, "", "", true},
		{`{"a":1,"a":2}`, "a", "", true},
		{`{"a":{"b":1},"c":{"b":2}}`, "", "", true},
		{`{"a":[{"b":1,"b":2}]}`, "a[0].b", "", true},
		{`{"a":[{"b":1},{"b":2,"c":"xx`, "", "a[1].c", false},
		{`{"rules":[{"proto":"tcp","description":"xxxx`, "", "rules[0].description", false},
		{`{"a":[1,2,`, "", "a[2]", false},
		{`{"group":"gg`, "", "group", false},
		{`"just a string"`, "", "", true},
	}
	for _, tc := range tests {
		dup, where, err := scanJSON([]byte(tc.body))
		if dup != tc.dup || where != tc.where || (err == nil) != tc.complete {
			t.Errorf("scanJSON(%s) = %q, %q, %v; want %q, %q, complete %v", tc.body, dup, where, err, tc.dup, tc.where, tc.complete)
		}
	}
}
