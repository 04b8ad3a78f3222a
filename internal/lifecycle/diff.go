package lifecycle

import "github.com/fwd-project/fwd/internal/textdiff"

// unifiedDiff is a minimal unified diff of two texts (see textdiff).
func unifiedDiff(name string, a, b []byte) string {
	return textdiff.Unified(name, a, b)
}
