package observe

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

const testRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: tcp, ports: 22, from: [198.18.0.0/24]}
  - name: ops
    ingress:
      - {proto: udp, ports: 161, from: [198.18.0.2]}
`

// fakeEngine answers with fixed counters over a real compiled table.
type fakeEngine struct {
	stats engine.Stats
	table *filter.Table
	hits  map[filter.Result]uint64
}

func (f *fakeEngine) Stats() engine.Stats                             { return f.stats }
func (f *fakeEngine) Table() *filter.Table                            { return f.table }
func (f *fakeEngine) RuleHits(*filter.Table) map[filter.Result]uint64 { return f.hits }

type fakeReloads lifecycle.ReloadStats

func (f fakeReloads) Stats() lifecycle.ReloadStats { return lifecycle.ReloadStats(f) }

func accept(group, rule int) filter.Result {
	return filter.Result{Verdict: verdict.Accept, Dir: direction.Ingress, Group: int32(group), Rule: int32(rule)}
}

func testSources(t *testing.T) Sources {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(p, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	tbl, err := lifecycle.Compile(p, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lat engine.Latency
	lat.Counts[1], lat.Counts[3], lat.Sum = 3, 1, 4*time.Microsecond
	return Sources{
		Engine: &fakeEngine{
			stats: engine.Stats{Accepted: 12, DroppedNoMatch: 5, DroppedACL: 4, DroppedUndecodable: 1, Workers: 2, Latency: lat,
				Queue: nfq.Stats{Received: 18}},
			table: tbl,
			hits:  map[filter.Result]uint64{accept(0, 0): 7, accept(0, 1): 2, accept(1, 0): 3},
		},
		Reloads:    fakeReloads{OK: 2, Failed: 1},
		QueueFirst: 4, QueueCount: 2,
		KernelStats: func() ([]nfq.KernelStats, error) {
			return []nfq.KernelStats{{Num: 3, QueueDropped: 99}, {Num: 4, QueueDropped: 6, UserDropped: 1}, {Num: 5, Waiting: 2}}, nil
		},
		LatencySampleEvery: 64,
	}
}

func testHandler(t *testing.T) (http.Handler, Sources, *Recorder) {
	t.Helper()
	src := testSources(t)
	rec := NewRecorder()
	h, err := Handler(Config{Sources: src, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	return h, src, rec
}

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func TestCheckAddr(t *testing.T) {
	for _, c := range []struct {
		addr    string
		public  bool
		wantErr string
	}{
		{"127.0.0.1:9101", false, ""},
		{"127.0.0.1:0", false, ""},
		{"[::1]:9101", false, ""},
		{"localhost:9101", false, ""},
		{"198.18.0.1:9101", true, ""},
		{":9101", true, ""},
		{"198.18.0.1:9101", false, "198.18.0.1:9101 listens on 198.18.0.1, not on loopback"},
		{"[2001:db8::1]:9101", false, "listens on 2001:db8::1, not on loopback"},
		{":9101", false, ":9101 listens on every address"},
		{"0.0.0.0:9101", false, "listens on 0.0.0.0"},
		{"example.com:9101", false, "listens on example.com"},
		{"127.0.0.1", false, `"127.0.0.1": want HOST:PORT`},
		{"127.0.0.1:", false, "missing port"},
	} {
		err := CheckAddr(c.addr, c.public)
		if c.wantErr == "" && err != nil {
			t.Errorf("CheckAddr(%q, %v) = %v, want nil", c.addr, c.public, err)
		}
		if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("CheckAddr(%q, %v) = %v, want %q", c.addr, c.public, err, c.wantErr)
		}
	}
}

// metricValues gathers the collector's metrics as "name{labels}" → value.
func metricValues(t *testing.T, h http.Handler) map[string]string {
	t.Helper()
	w := get(t, h, "GET", "/metrics")
	if w.Code != 200 {
		t.Fatalf("/metrics: %d %s", w.Code, w.Body)
	}
	out := make(map[string]string)
	for _, line := range strings.Split(w.Body.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		out[line[:i]] = line[i+1:]
	}
	return out
}

func TestMetrics(t *testing.T) {
	h, src, _ := testHandler(t)
	got := metricValues(t, h)
	// A rule's label is its ID, as fwctl status shows it.
	f := src.Engine.(*fakeEngine).table.File()
	id := func(g, r int) string { return f.Groups[g].Ingress[r].ID }
	want := map[string]string{
		`fwd_flows_accepted_total`:                                              "12",
		`fwd_flows_dropped_total{reason="no-match"}`:                            "5",
		`fwd_flows_dropped_total{reason="undecodable"}`:                         "1",
		`fwd_flows_dropped_total{reason="acl-deny"}`:                            "4",
		`fwd_flows_dropped_total{reason="no-table"}`:                            "0",
		`fwd_rule_accepted_total{dir="in",group="web",rule="` + id(0, 0) + `"}`: "7",
		`fwd_rule_accepted_total{dir="in",group="web",rule="` + id(0, 1) + `"}`: "2",
		`fwd_rule_accepted_total{dir="in",group="ops",rule="` + id(1, 0) + `"}`: "3",
		// ops has no egress rules: its implicit "all to anywhere" counts.
		`fwd_rule_accepted_total{dir="out",group="ops",rule="default"}`: "0",
		`fwd_group_accepted_total{group="web"}`:                         "9",
		`fwd_group_accepted_total{group="ops"}`:                         "3",
		`fwd_kernel_queue_dropped_total{queue="4"}`:                     "6",
		`fwd_kernel_user_dropped_total{queue="4"}`:                      "1",
		`fwd_kernel_queue_waiting{queue="5"}`:                           "2",
		`fwd_queue_packets_total`:                                       "18",
		`fwd_workers`:                                                   "2",
		`fwd_verdict_latency_seconds_bucket{le="2.5e-07"}`:              "0",
		`fwd_verdict_latency_seconds_bucket{le="5e-07"}`:                "3",
		`fwd_verdict_latency_seconds_bucket{le="2.5e-06"}`:              "4",
		`fwd_verdict_latency_seconds_bucket{le="+Inf"}`:                 "4",
		`fwd_verdict_latency_seconds_count`:                             "4",
		`fwd_verdict_latency_sample_every`:                              "64",
		`fwd_reloads_total{result="ok"}`:                                "2",
		`fwd_reloads_total{result="failed"}`:                            "1",
		`fwd_table_live`:                                                "1",
		`fwd_table_rules`:                                               "5",
		`fwd_reload_duration_seconds_count`:                             "0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got[`fwd_kernel_queue_dropped_total{queue="3"}`]; ok {
		t.Error("queue 3 is not fwd's, yet it is reported")
	}
	var info string
	for k := range got {
		if strings.HasPrefix(k, "fwd_rules_info{") {
			info = k
		}
	}
	if !strings.Contains(info, `hash="`) || len(info) < len(`fwd_rules_info{hash=""}`)+64 {
		t.Errorf("rules info %q, want the sha256 as a label", info)
	}
	if m, err := parseFloat(got["fwd_table_memory_bytes"]); err != nil || m < 1<<10 {
		t.Errorf("fwd_table_memory_bytes = %q, want a size", got["fwd_table_memory_bytes"])
	}
}

func parseFloat(s string) (float64, error) {
	var f float64
	err := json.Unmarshal([]byte(s), &f)
	return f, err
}

// TestReadOnly: the listener answers GET (and HEAD) only.
func TestReadOnly(t *testing.T) {
	h, _, _ := testHandler(t)
	for _, path := range []string{"/", "/status.json", "/metrics", "/app.js"} {
		if w := get(t, h, "GET", path); w.Code != 200 {
			t.Errorf("GET %s: %d", path, w.Code)
		}
		for _, m := range []string{"POST", "PUT", "DELETE"} {
			if w := get(t, h, m, path); w.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", m, path, w.Code)
			}
		}
	}
	w := get(t, h, "GET", "/")
	if !strings.Contains(w.Body.String(), `<script src="app.js"`) || !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("page: %s\nheaders %v", w.Body, w.Header())
	}
}

func TestStatusJSON(t *testing.T) {
	h, _, rec := testHandler(t)
	t0 := time.Unix(1000, 0)
	rec.Series.Add(t0, 10, 0)
	rec.Series.Add(t0.Add(time.Second), 15, 2)
	rec.Drops.RecordDrop(engine.DropEvent{Time: t0, Dir: direction.Ingress, Peer: netip.MustParseAddr("198.18.0.9"), Proto: 6, Port: 23, Reason: engine.ReasonNoMatch})
	rec.Reloads.Record(lifecycle.ReloadEvent{Start: t0, First: true, Result: lifecycle.ReloadOK, Hash: "ab", Duration: time.Millisecond})
	rec.Reloads.Record(lifecycle.ReloadEvent{Start: t0, Result: lifecycle.ReloadFailed, Hash: "ab", Err: "bad port"})
	w := get(t, h, "GET", "/status.json")
	var st Status
	if err := json.NewDecoder(w.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Groups) != 2 || st.Groups[0].Name != "web" || st.Groups[0].Accepted != 9 || len(st.Groups[0].Rules) != 3 || st.Groups[0].Rules[2].Number != 0 ||
		st.Groups[0].Rules[0].Text != "tcp 80,443 from any" || st.Groups[0].Rules[0].Hits != 7 {
		t.Errorf("groups %+v", st.Groups)
	}
	if len(st.Rates.Accepted) != 1 || st.Rates.Accepted[0] != 5 || st.Rates.Dropped[0] != 2 {
		t.Errorf("rates %+v, want one second of 5 accepted, 2 dropped", st.Rates)
	}
	if len(st.Drops) != 1 || st.Drops[0].Peer != "198.18.0.9" || st.Drops[0].Port != 23 || st.Drops[0].Reason != "no-match" || st.Drops[0].Proto != "tcp" {
		t.Errorf("drops %+v", st.Drops)
	}
	if len(st.Reloads) != 2 || st.Reloads[0].Result != "failed" || !st.Reloads[1].First {
		t.Errorf("reloads %+v, want newest first", st.Reloads)
	}
	if st.Health.Status != "degraded" || len(st.Health.Problems) != 1 || !strings.Contains(st.Health.Problems[0], "bad port") {
		t.Errorf("health %+v, want degraded by the failed reload", st.Health)
	}
	if st.Counters["accepted"] != 12 || st.Counters["kernel_dropped"] != 7 {
		t.Errorf("counters %v", st.Counters)
	}
}

func TestRings(t *testing.T) {
	d := NewDrops(3)
	for i := range 5 {
		d.RecordDrop(engine.DropEvent{Port: uint16(i)})
	}
	var ports []uint16
	for _, ev := range d.Recent() {
		ports = append(ports, ev.Port)
	}
	if len(ports) != 3 || ports[0] != 4 || ports[2] != 2 {
		t.Errorf("drops kept %v, want [4 3 2]", ports)
	}
	s := NewSeries(3)
	t0 := time.Unix(0, 0)
	for i := range 5 {
		s.Add(t0.Add(time.Duration(i)*time.Second), uint64(i*i), 0)
	}
	r := s.Rates()
	if len(r.Accepted) != 2 || r.Accepted[0] != 5 || r.Accepted[1] != 7 || !r.End.Equal(t0.Add(4*time.Second)) {
		t.Errorf("rates %+v, want [5 7] ending at 4s", r)
	}
	rl := NewReloads(2)
	for _, res := range []string{"a", "b", "c"} {
		rl.Record(lifecycle.ReloadEvent{Result: res})
	}
	if got := rl.Recent(); len(got) != 2 || got[0].Result != "c" || got[1].Result != "b" {
		t.Errorf("reloads %+v, want c, b", got)
	}
	m := &dto.Metric{}
	if err := rl.duration.Write(m); err != nil || m.Histogram.GetSampleCount() != 3 {
		t.Errorf("reload histogram: %v samples, err %v", m.Histogram.GetSampleCount(), err)
	}
}

func TestPageAssets(t *testing.T) {
	h, _, _ := testHandler(t)
	for path, want := range map[string]string{"/app.js": "status.json", "/style.css": "#chart"} {
		w := get(t, h, "GET", path)
		body, _ := io.ReadAll(w.Body)
		if !strings.Contains(string(body), want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
}

func TestHealth(t *testing.T) {
	failed := []lifecycle.ReloadEvent{{Result: lifecycle.ReloadFailed, Err: "bad"}, {Result: lifecycle.ReloadOK}}
	recovered := []lifecycle.ReloadEvent{{Result: lifecycle.ReloadOK}, {Result: lifecycle.ReloadFailed}}
	for _, c := range []struct {
		name      string
		tableLive bool
		workers   int
		reloads   []lifecycle.ReloadEvent
		want      string
	}{
		{"running", true, 2, recovered, "ok"},
		{"no table", false, 2, nil, "failing"},
		{"no worker", true, 0, nil, "failing"},
		{"last reload failed", true, 2, failed, "degraded"},
	} {
		h := health(c.tableLive, engine.Stats{Workers: c.workers}, c.reloads)
		if h.Status != c.want || (c.want == "ok") != (len(h.Problems) == 0) {
			t.Errorf("%s: %+v, want %s", c.name, h, c.want)
		}
	}
}
