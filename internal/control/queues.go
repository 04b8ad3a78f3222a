package control

// QueueHealth is one queue's health in GET /v1/status, as fwd's queue
// watchdog sees it.
type QueueHealth struct {
	Queue uint16 `json:"queue"`
	// Health is "ok", "stalled" (packets wait in the kernel and the
	// reader took none at the last check) or "restarted N times".
	Health   string `json:"health"`
	Restarts uint64 `json:"restarts"`
}
