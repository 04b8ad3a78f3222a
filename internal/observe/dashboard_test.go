package observe

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

const dashboardPath = "../../packaging/grafana/fwd-dashboard.json"

// exprs returns every "expr" and templating "query" string in v.
func exprs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && (k == "expr" || (k == "query" && strings.Contains(s, "fwd_"))) {
				*out = append(*out, s)
			}
			exprs(e, out)
		}
	case []any:
		for _, e := range x {
			exprs(e, out)
		}
	}
}

// TestDashboard: the shipped Grafana dashboard is valid JSON and every
// query names only metrics fwd serves.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	h, _, _ := testHandler(t)
	served := make(map[string]bool)
	typeLine := regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)$`)
	for _, m := range typeLine.FindAllStringSubmatch(get(t, h, "GET", "/metrics").Body.String(), -1) {
		served[m[1]] = true
		if m[2] == "histogram" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				served[m[1]+suffix] = true
			}
		}
	}
	var qs []string
	exprs(d, &qs)
	if len(qs) < 10 {
		t.Fatalf("%d queries in the dashboard, want the panels' (at least 10)", len(qs))
	}
	name := regexp.MustCompile(`\bfwd_[a-z0-9_]+`)
	for _, q := range qs {
		names := name.FindAllString(q, -1)
		if len(names) == 0 {
			t.Errorf("query %q names no fwd metric", q)
		}
		for _, n := range names {
			if !served[n] {
				t.Errorf("query %q: fwd serves no metric %s", q, n)
			}
		}
	}
	panels, _ := d["panels"].([]any)
	for _, p := range panels {
		var ps []string
		exprs(p, &ps)
		if len(ps) == 0 {
			t.Errorf("panel %v has no query", p.(map[string]any)["title"])
		}
	}
}
