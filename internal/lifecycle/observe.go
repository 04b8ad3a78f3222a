package lifecycle

import "time"

// ReloadEvent is one reload as ServiceConfig.Observe sees it.
type ReloadEvent struct {
	Start    time.Time
	Duration time.Duration // from the read of the file to the swap's end
	First    bool          // the daemon's first load, not a reload
	Result   string        // ReloadOK, ReloadUnchanged or ReloadFailed
	Hash     string        // sha256 of the live rules afterwards ("" when none)
	Err      string        // why it failed
}

// ReloadEvent results.
const (
	ReloadOK        = "ok"
	ReloadUnchanged = "unchanged"
	ReloadFailed    = "failed"
)

// observe reports a finished reload to ServiceConfig.Observe. The caller
// holds s.mu.
func (s *Service) observe(start time.Time, first bool, res ReloadResult, e *Error) {
	if s.cfg.Observe == nil {
		return
	}
	ev := ReloadEvent{Start: start, Duration: time.Since(start), First: first, Result: ReloadOK,
		Hash: liveHash(s.cfg.Target.Table())}
	switch {
	case e != nil:
		ev.Result, ev.Err = ReloadFailed, e.Message
	case !res.Changed:
		ev.Result = ReloadUnchanged
	}
	s.cfg.Observe(ev)
}
