package main

import (
	"flag"
	"fmt"

	"github.com/fwd-project/fwd/internal/rules"
)

// limitFlags are the bounds on a rules file that fwd takes as flags, so
// that validate and check can hold a file to the same bounds.
type limitFlags struct {
	maxRules     *int
	maxFileBytes *int64
}

func addLimitFlags(fl *flag.FlagSet) limitFlags {
	return limitFlags{
		maxRules:     fl.Int("max-rules", rules.DefaultMaxRules, "largest number of rules a file may hold"),
		maxFileBytes: fl.Int64("max-file-bytes", rules.DefaultMaxFileBytes, "largest rules file, in `bytes`, read"),
	}
}

// options checks the flags' values and returns them as rules.Options.
func (l limitFlags) options() (rules.Options, error) {
	if *l.maxRules < 1 {
		return rules.Options{}, fmt.Errorf("--max-rules %d: want at least 1", *l.maxRules)
	}
	if *l.maxFileBytes < 1 {
		return rules.Options{}, fmt.Errorf("--max-file-bytes %d: want at least 1", *l.maxFileBytes)
	}
	return rules.Options{MaxRules: *l.maxRules, MaxFileBytes: *l.maxFileBytes}, nil
}
