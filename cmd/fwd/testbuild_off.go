//go:build !fwdtest

package main

import (
	"flag"

	"github.com/fwd-project/fwd/internal/nfq"
)

// testOptions are the options of a test build (-tags fwdtest); a
// normal build has none.
type testOptions struct{}

func (*testOptions) register(*flag.FlagSet) {}

func (*testOptions) wrapQueue(q nfq.Queue) nfq.Queue { return q }

func (*testOptions) allowShortTTL() bool { return false }
