package lifecycle

import (
	"fmt"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
)

// Compile reads, validates and compiles a rules file, as a reload does
// before its swap, for the commands that need a table but no daemon
// (fwctl validate, check and replay; the benchmarks). A bad file's error
// is a rules.ErrorList naming every problem; an unreadable one's is
// "file: message" and wraps the fs error. The file's warnings are in the table's File().Warnings
// (Warnings renders them).
func Compile(path string, opts rules.Options) (*filter.Table, error) {
	data, err := rules.ReadFile(path, opts.MaxFileBytes)
	if err != nil {
		return nil, &fileError{path: path, err: err}
	}
	f, err := rules.Parse(path, data, opts)
	if err != nil {
		return nil, err
	}
	return compile(path, f, time.Now())
}

// fileError is a rules file that cannot be read, said as every other
// error about a file is: "file: message" ("rules.yaml: no such file or
// directory"). It wraps the fs error (errors.Is(err, fs.ErrNotExist)).
type fileError struct {
	path string
	err  error
}

func (e *fileError) Error() string { return e.path + ": " + unwrapPath(e.err).Error() }
func (e *fileError) Unwrap() error { return e.err }

// compile is the step from a decoded file to a table, shared by Compile
// and the daemon's reloads and edits.
// now is the time ACL expiries are judged against.
//
// Group references resolve to this host's own addresses (see
// resolveSingleHost); the table's File is then the resolved copy.
func compile(path string, f *rules.File, now time.Time) (*filter.Table, error) {
	rf, err := resolveSingleHost(f, HostAddrs)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", path, err)
	}
	t, err := filter.CompileAt(rf, now)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", path, err)
	}
	return t, nil
}

// Warnings renders a file's warnings in the one format fwd uses for them
// (and for errors): "file:line:col: message". Commands print each after
// "warning: ", the daemon logs each as a warning.
func Warnings(f *rules.File) []string {
	if f == nil {
		return nil
	}
	var out []string
	for _, w := range f.Warnings {
		out = append(out, w.Error())
	}
	return out
}
