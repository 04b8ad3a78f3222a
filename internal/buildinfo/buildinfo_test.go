package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	for _, tc := range []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		ok      bool
		want    string
	}{
		{"no build info", "", nil, false, "devel (commit unknown)"},
		{"stamped, no build info", "v1.0.0", nil, false, "v1.0.0 (commit unknown)"},
		{"vcs, devel", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs}, true,
			"devel (commit 0123456789ab, 2026-12-01T10:00:00Z, modified; go1.26.0)"},
		{"stamped wins", "v1.2.0-3-g0123456", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.1.0"}, Settings: vcs[:2]}, true,
			"v1.2.0-3-g0123456 (commit 0123456789ab; go1.26.0)"},
		{"module version", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.1.0"}}, true,
			"v1.1.0 (commit unknown; go1.26.0)"},
	} {
		if got := fromBuildInfo(tc.stamped, tc.bi, tc.ok).String(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
