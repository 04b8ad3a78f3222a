package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
)

const observeRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
  - name: admin
    ingress:
      - {proto: tcp, ports: 8080, from: [198.18.0.3]}
`

// startObservedFwd starts fwd with --metrics on a free loopback port of the
// server namespace and returns the address it logged.
func (e *env) startObservedFwd() (*fwd, string) {
	e.t.Helper()
	rules := e.writeRules("rules.yaml", observeRules)
	f := e.startFwd("--rules", rules, "--queues", "1", "--metrics", "127.0.0.1:0")
	line := f.waitLog(0, "metrics and status page")
	m := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(line)
	if m == nil {
		e.t.Fatalf("no address in %q", line)
	}
	return f, m[1]
}

// getIn fetches a URL from inside the server namespace, where the
// loopback listener is.
func (e *env) getIn(u string) string {
	e.t.Helper()
	out, err := inNS(e.server, "curl", "-sS", "--max-time", "5", "--fail", u)
	if err != nil {
		e.t.Fatalf("curl %s in the server namespace: %v: %s", u, err, out)
	}
	return out
}

// statusJSON is the part of /status.json the test reads.
type statusJSON struct {
	Health struct{ Status string }
	Groups []struct {
		Name  string
		Rules []struct {
			Text string
			Hits uint64
		}
	}
	Rates struct{ Accepted, Dropped []float64 }
	Drops []struct {
		Peer   string
		Port   int
		Reason string
	}
	Reloads []struct{ Result, Hash string }
}

func (e *env) pageStatus(addr string) statusJSON {
	e.t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(e.getIn("http://"+addr+"/status.json")), &st); err != nil {
		e.t.Fatalf("status.json: %v", err)
	}
	return st
}

// trafficUntil sends accepted (port 80) and dropped (port 22) connections
// until the status page's per-second series shows both, or fails.
func (e *env) trafficUntil(addr string) statusJSON {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for range 3 {
			e.mustPass(url("http", server4, 80), "")
			if c, err := dialIn(e.client, "tcp", "", server4+":22", 100*time.Millisecond); err == nil {
				c.Close()
				e.t.Fatal("port 22 answered; the rules do not allow it")
			}
		}
		st := e.pageStatus(addr)
		if nonzero(st.Rates.Accepted) >= 2 && nonzero(st.Rates.Dropped) >= 2 {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no accepted and dropped rates after a minute of traffic: %+v", st.Rates)
		}
	}
}

func nonzero(xs []float64) int {
	n := 0
	for _, x := range xs {
		if x > 0 {
			n++
		}
	}
	return n
}

// metricValue reads one sample of the text exposition format.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in the metrics", series)
	return 0
}

// TestMetricsEndToEnd: a live fwd's /metrics counts what the clients
// did, by reason and by rule, and its reloads.
func TestMetricsEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.startNginx()
	f, addr := e.startObservedFwd()
	e.mustPass(url("http", server4, 80), "")
	e.mustPass(url("http", server4, 80), "")
	e.mustDrop(url("http", server4, 22), "")
	f.reload("rules unchanged")
	m := e.getIn("http://" + addr + "/metrics")
	f0, err := rules.Parse("rules.yaml", []byte(observeRules), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	webID, adminID := f0.Groups[0].Ingress[0].ID, f0.Groups[1].Ingress[0].ID
	for series, min := range map[string]float64{
		`fwd_flows_accepted_total`:                                           2,
		`fwd_flows_dropped_total{reason="no-match"}`:                         1,
		`fwd_rule_accepted_total{dir="in",group="web",rule="` + webID + `"}`: 2,
		`fwd_group_accepted_total{group="web"}`:                              2,
		`fwd_reloads_total{result="unchanged"}`:                              1,
		`fwd_table_live`:                                                     1,
		`fwd_reload_duration_seconds_count`:                                  2, // the first load and the reload
		`fwd_workers`:                                                        1,
	} {
		if v := metricValue(t, m, series); v < min {
			t.Errorf("%s = %v, want at least %v", series, v, min)
		}
	}
	if v := metricValue(t, m, `fwd_rule_accepted_total{dir="in",group="admin",rule="`+adminID+`"}`); v != 0 {
		t.Errorf("admin rule counted %v accepts, want 0", v)
	}
	for _, series := range []string{`fwd_kernel_queue_dropped_total{queue="0"}`, `fwd_kernel_user_dropped_total{queue="0"}`, `fwd_verdict_latency_seconds_count`, `fwd_table_memory_bytes`} {
		metricValue(t, m, series) // present
	}
	if strings.Contains(m, client4) {
		t.Errorf("a peer address is in the metrics:\n%s", m)
	}
	// Read-only.
	if out, err := inNS(e.server, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "http://"+addr+"/status.json"); err != nil || out != "405" {
		t.Errorf("POST /status.json: %q %v, want 405", out, err)
	}
	// Nothing listens beyond loopback: the client cannot reach it.
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	if c, err := dialIn(e.client, "tcp", "", server4+":"+port, 500*time.Millisecond); err == nil {
		c.Close()
		t.Errorf("the metrics port %s answers on %s", port, server4)
	}
	f.stop()
}

// chromium runs headless Chromium in the server namespace (where the
// loopback listener is) with a fresh profile.
func (e *env) chromium(args ...string) string {
	e.t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		e.t.Fatalf("chromium is not installed (run make deps): %v", err)
	}
	profile := filepath.Join(e.dir, fmt.Sprintf("chromium-%d", time.Now().UnixNano()))
	base := []string{"HOME=" + e.dir, "timeout", "90", bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + profile}
	out, err := exec.Command("ip", append([]string{"netns", "exec", e.server, "env"}, append(base, args...)...)...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		e.t.Fatalf("chromium %v: %v\n%s", args, err, stderr)
	}
	return string(out)
}

// TestStatusPage loads the status page of a live fwd in headless
// Chromium and checks what it rendered: the rules with their hits, the
// chart's data points, the recent drops and the reloads. It saves a
// screenshot in testdata/status-page.png for review (rewritten with
// FWD_UPDATE_SCREENSHOT=1).
func TestStatusPage(t *testing.T) {
	e := newEnv(t)
	e.startNginx()
	f, addr := e.startObservedFwd()
	f.reload("rules unchanged")
	st := e.trafficUntil(addr)
	if st.Health.Status != "ok" || len(st.Groups) != 2 || st.Groups[0].Rules[0].Hits == 0 {
		t.Fatalf("status.json before the browser: %+v", st)
	}
	page := "http://" + addr + "/"
	dom := e.chromium("--virtual-time-budget=5000", "--dump-dom", page)
	for _, want := range []string{
		`data-loaded="1"`,
		`data-group="web"`, `data-group="admin"`,
		`<code>tcp 80,443 from any</code>`,
		`<code>tcp 8080 from 198.18.0.3</code>`,
		`class="badge ok"`,
		`data-counter="accepted"`,
		`<td class="peer">` + client4 + `</td>`,
		`<td>no-match</td>`,
		`<td>unchanged</td>`,
		`(start)`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %s", want)
		}
	}
	// The hits of web's first rule, as rendered.
	hits := regexp.MustCompile(`<tr data-rule="1">.*?<td class="num hits">([0-9,]+)</td>`).FindStringSubmatch(dom)
	if hits == nil || hits[1] == "0" {
		t.Errorf("rule 1's hits not rendered (or zero): %v", hits)
	}
	// The chart: both lines drawn with points, some above the baseline.
	for _, id := range []string{"line-accepted", "line-dropped"} {
		m := regexp.MustCompile(`id="` + id + `"[^>]*points="([^"]*)"|points="([^"]*)"[^>]*id="` + id + `"`).FindStringSubmatch(dom)
		if m == nil {
			t.Errorf("chart line %s missing", id)
			continue
		}
		pts := strings.Fields(m[1] + m[2])
		raised := 0
		for _, p := range pts {
			if _, y, ok := strings.Cut(p, ","); ok && y != "156.0" {
				raised++
			}
		}
		if len(pts) < 2 || raised == 0 {
			t.Errorf("chart line %s: %d points, %d above zero, want a drawn line", id, len(pts), raised)
		}
	}
	if t.Failed() {
		t.Logf("rendered DOM:\n%s", dom)
	}
	shot := filepath.Join(e.dir, "status-page.png")
	e.chromium("--virtual-time-budget=5000", "--window-size=1200,1800", "--screenshot="+shot, page)
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	// The committed screenshot is rewritten only when asked: a test run
	// leaves the source tree as it found it.
	if os.Getenv("FWD_UPDATE_SCREENSHOT") != "" {
		if err := os.WriteFile(filepath.Join(repoRoot, "internal", "e2e", "testdata", "status-page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.stop()
}
