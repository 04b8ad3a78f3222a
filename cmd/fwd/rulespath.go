package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/rules"
)

// shippedRules lists where the rules shipped with fwd may be, relative to
// the binary: installed next to it, or in the source tree (bin/fwd).
func shippedRules() []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	dir := filepath.Dir(exe)
	return []string{
		filepath.Join(dir, "rules", "default.yaml"),
		filepath.Join(dir, "..", "rules", "default.yaml"),
		filepath.Join(dir, "..", "share", "fwd", "default.yaml"),
	}
}

// rulesPath picks the rules file: the one given, else the default path,
// else the shipped default.
func rulesPath(o options, log *slog.Logger) (string, error) {
	if o.rulesGiven {
		return o.rules, nil
	}
	if _, err := os.Stat(o.rules); err == nil {
		return o.rules, nil
	}
	for _, p := range shippedRules() {
		if _, err := os.Stat(p); err == nil {
			p = filepath.Clean(p)
			log.Warn("rules file missing, using the shipped default rules", "missing", o.rules, "using", p)
			return p, nil
		}
	}
	return "", fmt.Errorf("no rules file: %s does not exist, and no shipped default rules at %s: create it with install -D -m 0644 rules/default.yaml %s (in fwd's source tree)",
		o.rules, strings.Join(cleanPaths(shippedRules()), ", "), o.rules)
}

func cleanPaths(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = filepath.Clean(p)
	}
	return out
}

// printRulesError says why the rules file kept fwd from starting: every
// error of an invalid file, one per line.
func printRulesError(w io.Writer, path string, err error) {
	var el rules.ErrorList
	if errors.As(err, &el) {
		fmt.Fprintf(w, "fwd: %s has %d error(s), not starting:\n", path, el.Count())
		for _, e := range el {
			fmt.Fprintf(w, "  %s\n", e)
		}
		return
	}
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprint(w, missingRules(path, shippedRules()))
		return
	}
	if e := (*lifecycle.Error)(nil); errors.As(err, &e) {
		err = errors.New(e.Message)
	}
	fmt.Fprintf(w, "fwd: cannot load %s, not starting: %v\n", path, err)
}

// missingRules says that the rules file given with --rules does not
// exist and how to create it: from the first of shipped (the places
// the shipped rules may be) that exists, else from the source tree's
// rules/default.yaml.
func missingRules(path string, shipped []string) string {
	from := "rules/default.yaml"
	where := " (in fwd's source tree)"
	for _, p := range shipped {
		if _, err := os.Stat(p); err == nil {
			from, where = filepath.Clean(p), ""
			break
		}
	}
	return fmt.Sprintf("fwd: rules file %s does not exist, not starting. Create it from the rules shipped with fwd%s, then edit it:\n"+
		"  install -D -m 0644 %s %s\n", path, where, from, path)
}
