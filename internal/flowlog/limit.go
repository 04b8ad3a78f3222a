package flowlog

// limiter lets at most rate lines through per second of record time, and
// counts the rest. Records come from several workers and may be a little
// out of order: an older record counts against the newest second seen.
// It belongs to the writer goroutine and is not safe for concurrent use.
type limiter struct {
	rate   int
	second int64 // the unix second being counted
	used   int
}

// allow reports whether a record of unix second sec may be written.
func (l *limiter) allow(sec int64) bool {
	if sec > l.second {
		l.second, l.used = sec, 0
	}
	if l.used >= l.rate {
		return false
	}
	l.used++
	return true
}
