package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"runtime/debug"
	"strings"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/rules"
)

// loadRules reads, validates and compiles a rules file as fwd does
// (lifecycle.Compile), printing its warnings to w in the format fwctl
// reload prints them. Every error of the file is in the returned error.
func loadRules(path string, opts rules.Options, w io.Writer) (*filter.Table, error) {
	// Loading allocates a few times the file's size in short-lived
	// objects (yaml.v3's node tree first): collecting them as they come
	// costs more than keeping them until the table is built, for a
	// command that exits soon after.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	t, err := lifecycle.Compile(path, opts)
	if err != nil {
		return nil, err
	}
	for _, warn := range lifecycle.Warnings(t.File()) {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	return t, nil
}

// loadExit maps a load error to an exit code.
func loadExit(err error) int {
	if errors.Is(err, fs.ErrPermission) {
		return exitPermission
	}
	return exitRejected
}

// parseInterleaved parses flags that may come before, between or after
// the positional words, and returns the words. Help is not an error.
func parseInterleaved(fl *flag.FlagSet, args []string) (words []string, code int, ok bool) {
	for rest := args; ; {
		if err := fl.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		if fl.NArg() == 0 {
			return words, exitOK, true
		}
		words = append(words, fl.Arg(0))
		rest = fl.Args()[1:]
	}
}

func newFlags(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet("fwctl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

func runValidate(e env, args []string) int {
	fl := newFlags("validate", e)
	limits := addLimitFlags(fl)
	fl.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: fwctl validate [--max-rules N] [--max-file-bytes N] FILE...")
		fl.PrintDefaults()
	}
	paths, code, ok := parseInterleaved(fl, args)
	if !ok {
		return code
	}
	if len(paths) == 0 {
		fl.Usage()
		return exitUsage
	}
	opts, err := limits.options()
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl validate: %v\n", err)
		return exitUsage
	}
	for _, path := range paths {
		tab, err := loadRules(path, opts, e.stderr)
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			var list rules.ErrorList
			if errors.As(err, &list) && list.Count() > 1 {
				fmt.Fprintf(e.stderr, "%s: %d errors\n", path, list.Count())
			}
			code = max(code, loadExit(err))
			continue
		}
		fmt.Fprintln(e.stdout, summary(path, tab.File()))
	}
	return code
}

// summary is validate's one line about a good file.
func summary(path string, f *rules.File) string {
	var in, out int
	var omit []string
	for _, g := range f.Groups {
		in += len(g.Ingress)
		out += len(g.Egress)
		if g.EgressOmitted {
			omit = append(omit, g.Name)
		}
	}
	egress := "egress restricted to the egress rules"
	if len(omit) > 0 {
		egress = "all outbound allowed (egress omitted in " + strings.Join(omit, ", ") + ")"
	}
	acl := ""
	if n := f.ACL.Len(); n > 0 {
		acl = fmt.Sprintf(", %s (%d ingress, %d egress)", plural(n, "acl entry"), len(f.ACL.Ingress), len(f.ACL.Egress))
		acl = strings.Replace(acl, "acl entrys", "acl entries", 1)
	}
	return fmt.Sprintf("%s: ok: version %d%s, %s, %s (%d ingress, %d egress), %s, sha256 %.12s",
		path, f.Version, acl, plural(len(f.Groups), "group"), plural(in+out, "rule"), in, out, egress, f.Hash)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
