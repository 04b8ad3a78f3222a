package main

import "fmt"

// runReplay is replaced by the replay work (issue 5).
func runReplay(e env, args []string) int {
	fmt.Fprintln(e.stderr, "fwctl replay: not built yet")
	return exitUsage
}
