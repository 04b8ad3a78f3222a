package observe

import (
	"time"

	"github.com/fwd-project/fwd/internal/engine"
	"github.com/fwd-project/fwd/internal/lifecycle"
)

// Status is what /status.json serves: the page's whole state.
type Status struct {
	Now      time.Time         `json:"now"`
	Started  time.Time         `json:"started"`
	Health   Health            `json:"health"`
	Hash     string            `json:"hash"`
	Groups   []GroupStatus     `json:"groups"`
	Counters map[string]uint64 `json:"counters"`
	Rates    Rates             `json:"rates"`
	Drops    []DropStatus      `json:"drops"`
	Reloads  []ReloadStatus    `json:"reloads"`
}

// Health sums up whether fwd is doing its job.
type Health struct {
	Status   string   `json:"status"` // ok, degraded or failing
	Problems []string `json:"problems"`
}

// GroupStatus is a security group of the live rules.
type GroupStatus struct {
	Name     string       `json:"name"`
	Accepted uint64       `json:"accepted"`
	Rules    []RuleStatus `json:"rules"`
}

// RuleStatus is one rule slot with its hits.
type RuleStatus struct {
	Number int    `json:"number"` // 0: the implicit egress accept
	Dir    string `json:"dir"`
	Text   string `json:"text"`
	Hits   uint64 `json:"hits"`
}

// DropStatus is one recent drop.
type DropStatus struct {
	Time   time.Time `json:"time"`
	Dir    string    `json:"dir"`
	Peer   string    `json:"peer"`
	Proto  string    `json:"proto"`
	Port   uint16    `json:"port"`
	Reason string    `json:"reason"`
}

// ReloadStatus is one past reload.
type ReloadStatus struct {
	Time       time.Time `json:"time"`
	First      bool      `json:"first"`
	Result     string    `json:"result"`
	Hash       string    `json:"hash"`
	DurationMS float64   `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
}

// status builds the page's state from the sources and the recorder.
func status(src *Sources, rec *Recorder, started, now time.Time) Status {
	st := Status{Now: now, Started: started, Groups: []GroupStatus{}, Drops: []DropStatus{}, Reloads: []ReloadStatus{}}
	es := src.Engine.Stats()
	st.Counters = map[string]uint64{
		"accepted":            es.Accepted,
		"dropped_no_match":    es.DroppedNoMatch,
		"dropped_undecodable": es.DroppedUndecodable,
		"dropped_no_table":    es.DroppedNoTable,
		"drop_log_skipped":    es.DropLogSkipped,
		"queued":              es.Queue.Received,
		"workers":             uint64(es.Workers),
	}
	var kernelDropped uint64
	if ks, err := src.kernelStats(); err == nil {
		for _, k := range ks {
			kernelDropped += k.QueueDropped + k.UserDropped
		}
		st.Counters["kernel_dropped"] = kernelDropped
	}
	t := src.Engine.Table()
	if t != nil && t.File() != nil {
		st.Hash = t.File().Hash
		for _, r := range ruleHits(t, src.Engine.RuleHits(t)) {
			if n := len(st.Groups); n == 0 || st.Groups[n-1].Name != r.Group {
				st.Groups = append(st.Groups, GroupStatus{Name: r.Group, Rules: []RuleStatus{}})
			}
			g := &st.Groups[len(st.Groups)-1]
			g.Accepted += r.Hits
			g.Rules = append(g.Rules, RuleStatus{Number: r.Number, Dir: r.Dir.String(), Text: r.Text, Hits: r.Hits})
		}
	}
	st.Rates = rec.Series.Rates()
	for _, d := range rec.Drops.Recent() {
		st.Drops = append(st.Drops, dropStatus(d))
	}
	reloads := rec.Reloads.Recent()
	for _, r := range reloads {
		st.Reloads = append(st.Reloads, ReloadStatus{Time: r.Start, First: r.First, Result: r.Result, Hash: r.Hash,
			DurationMS: float64(r.Duration.Microseconds()) / 1000, Error: r.Err})
	}
	st.Health = health(t != nil, es, reloads)
	return st
}

func dropStatus(d engine.DropEvent) DropStatus {
	ds := DropStatus{Time: d.Time, Dir: d.Dir.String(), Proto: d.Proto.String(), Port: d.Port, Reason: d.Reason}
	if d.Peer.IsValid() {
		ds.Peer = d.Peer.String()
	}
	return ds
}

// health is failing when fwd answers nothing (no table, no worker),
// degraded when it runs on rules older than the file (the last reload
// failed). Overload shows in the counters and the metrics.
func health(tableLive bool, es engine.Stats, reloads []lifecycle.ReloadEvent) Health {
	h := Health{Status: "ok", Problems: []string{}}
	if !tableLive {
		h.Problems = append(h.Problems, "no rules live: every new connection is dropped")
	}
	if es.Workers == 0 {
		h.Problems = append(h.Problems, "no queue worker running")
	}
	if len(h.Problems) > 0 {
		h.Status = "failing"
		return h
	}
	if len(reloads) > 0 && reloads[0].Result == lifecycle.ReloadFailed {
		h.Problems = append(h.Problems, "the last reload failed: running the previous rules ("+reloads[0].Err+")")
	}
	if len(h.Problems) > 0 {
		h.Status = "degraded"
	}
	return h
}
