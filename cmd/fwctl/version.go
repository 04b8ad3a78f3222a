package main

import (
	"fmt"

	"github.com/fwd-project/fwd/internal/buildinfo"
)

// runVersion is fwctl version (and fwctl --version).
func runVersion(e env, args []string) int {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprintln(e.stdout, "usage: fwctl version")
		return exitOK
	}
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "fwctl version: unexpected argument %q\nusage: fwctl version\n", args[0])
		return exitUsage
	}
	fmt.Fprintln(e.stdout, "fwctl", buildinfo.Get())
	return exitOK
}

// isHelp reports whether a word asks for help.
func isHelp(w string) bool { return w == "-h" || w == "--help" || w == "-help" }
