// Package buildinfo says which fwd this is: the version the Makefile
// stamped in (git describe, through -ldflags -X), else the module's
// version, and the commit the binary was built from, read from the
// build's VCS information (runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// version is set by the Makefile:
//
//	-ldflags "-X github.com/fwd-project/fwd/internal/buildinfo.version=$(git describe --tags --always --dirty)"
//
// The linker can only set a package-level string; nothing else writes it.
var version string

// Info is what fwd --version and fwctl version print.
type Info struct {
	Version  string // "v1.2.0-3-gabcdef0", the module version, or "devel"
	Commit   string // the full commit hash, "" when unknown
	Time     string // the commit's time (RFC 3339), "" when unknown
	Modified bool   // built from a tree with uncommitted changes
	Go       string // the Go version that built it
}

// Get returns the running binary's Info.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(version, bi, ok)
}

func fromBuildInfo(stamped string, bi *debug.BuildInfo, ok bool) Info {
	i := Info{Version: stamped}
	if !ok {
		if i.Version == "" {
			i.Version = "devel"
		}
		return i
	}
	i.Go = bi.GoVersion
	if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		i.Version = bi.Main.Version
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Commit = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is the one line both commands print after their name:
// "v1.2.0 (commit 0123456789ab, 2026-12-01T10:00:00Z, modified; go1.26.0)".
func (i Info) String() string {
	s := i.Version
	commit := "commit unknown"
	if i.Commit != "" {
		commit = "commit " + short(i.Commit)
	}
	if i.Time != "" {
		commit += ", " + i.Time
	}
	if i.Modified {
		commit += ", modified"
	}
	if i.Go != "" {
		commit += "; " + i.Go
	}
	return fmt.Sprintf("%s (%s)", s, commit)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
