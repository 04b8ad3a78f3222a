package lifecycle

import (
	"fmt"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
)

// Compile reads, validates and compiles a rules file, as a reload does
// before its swap, for the commands that need a table but no daemon
// (fwctl validate, check and replay; the benchmarks). A bad file's error
// is a rules.ErrorList naming every problem; an unreadable one's wraps
// the fs error. The file's warnings are in the table's File().Warnings
// (Warnings renders them).
func Compile(path string, opts rules.Options) (*filter.Table, error) {
	data, err := rules.ReadFile(path, opts.MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	f, err := rules.Parse(path, data, opts)
	if err != nil {
		return nil, err
	}
	return compile(path, f)
}

// compile is the step from a decoded file to a table, shared by Compile
// and the daemon's reloads and edits.
func compile(path string, f *rules.File) (*filter.Table, error) {
	t, err := filter.Compile(f)
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
