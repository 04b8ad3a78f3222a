package control

import "github.com/fwd-project/fwd/internal/lifecycle"

// LimitInfo is one rule with a limit as status shows it: its count of
// limited flows and the peers over its limit now.
type LimitInfo struct {
	ID      string   `json:"id"`
	Conns   int      `json:"conns"`
	Per     string   `json:"per"`
	Limited uint64   `json:"limited"` // flows dropped over the limit since the rule went live
	Over    int      `json:"peers_over"`
	Peers   []string `json:"peers,omitempty"` // up to 16 of them; an IPv6 peer as its /64
}

// LimitTable is the daemon's table of (rule, peer) entries.
type LimitTable struct {
	Entries   int    `json:"entries"` // its size; 0 before the first rule with a limit
	InUse     int    `json:"in_use"`
	Evictions uint64 `json:"evictions"`
}

// LimitSpec is a rule's limit in an edit.
type LimitSpec = lifecycle.LimitSpec
