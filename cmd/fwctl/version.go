package main

import (
	"fmt"

	"github.com/fwd-project/fwd/internal/buildinfo"
)

// runVersion is fwctl version (and fwctl --version).
func runVersion(e env, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "fwctl version: unexpected argument %q\nusage: fwctl version\n", args[0])
		return exitUsage
	}
	fmt.Fprintln(e.stdout, "fwctl", buildinfo.Get())
	return exitOK
}
