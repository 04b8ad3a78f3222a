package observe

import "testing"

// TestFleetMetrics: the fwd_fleet_* metrics appear in fleet mode only.
func TestFleetMetrics(t *testing.T) {
	h, _, _ := testHandler(t)
	if got := metricValues(t, h); got["fwd_fleet_revision"] != "" {
		t.Fatalf("fwd_fleet_revision = %q outside fleet mode", got["fwd_fleet_revision"])
	}
	src := testSources(t)
	src.Fleet = func() FleetStats {
		return FleetStats{Revision: 42, StalenessSeconds: 3.5, Snapshots: 7, Refused: 2, Resyncs: 1, Error: true}
	}
	h, err := Handler(Config{Sources: src, Recorder: NewRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	got := metricValues(t, h)
	want := map[string]string{
		"fwd_fleet_revision":                          "42",
		"fwd_fleet_staleness_seconds":                 "3.5",
		"fwd_fleet_snapshot_error":                    "1",
		`fwd_fleet_snapshots_total{result="applied"}`: "7",
		`fwd_fleet_snapshots_total{result="refused"}`: "2",
		"fwd_fleet_resyncs_total":                     "1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
