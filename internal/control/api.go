// Package control is the transport of fwd's control plane: an HTTP+JSON
// API on a Unix socket (so that curl --unix-socket works) over the rules
// lifecycle (package lifecycle), and the Go client fwctl speaks it with.
//
// Every connection's peer is checked with SO_PEERCRED before a byte of
// its request is read: root (and, when configured, members of one group)
// only. Request bodies are size-limited. Paths are versioned (/v1/...).
// Errors are JSON objects {"error":{"code":"...","message":"..."}} with a
// stable code (the Code constants) that scripts may test; the lifecycle's
// codes are mapped to reply statuses in one place (httpStatus).
//
// Reloads and edits are the lifecycle's: the server decodes a request,
// calls the lifecycle.Service and encodes its result or error.
package control

import (
	"errors"
	"net/http"
	"strings"

	"github.com/fwd-project/fwd/internal/lifecycle"
)

// DefaultSocket is where fwd listens and fwctl connects by default.
const DefaultSocket = "/run/fwd/fwd.sock"

// DefaultMaxBody is the largest request body the server reads.
const DefaultMaxBody = 64 << 10

// Code is a stable error code of the API: the lifecycle's codes and the
// transport's own.
type Code = lifecycle.Code

// Error codes. They are part of the API: scripts may depend on them.
const (
	CodeBadRequest         = lifecycle.CodeBadRequest // malformed JSON, unknown field, bad value
	CodeNotFound           = lifecycle.CodeNotFound   // no such path, or no rule to delete
	CodeMethod        Code = "method_not_allowed"
	CodeTooLarge      Code = "too_large"                 // request body over the limit
	CodeForbidden     Code = "forbidden"                 // the peer is not root or in the socket group
	CodeInvalidRules       = lifecycle.CodeInvalidRules  // the rules file (or the edit's result) has errors: details lists them
	CodeEgressOmitted      = lifecycle.CodeEgressOmitted // egress rule for a group that allows all outbound
	CodeReadOnly           = lifecycle.CodeReadOnly      // edits are refused: fwd runs on its shipped default rules
	CodeStaleNumbers       = lifecycle.CodeStaleNumbers  // rule numbers given, but the rules file changed since it was loaded: reload first
	CodeNumberTaken        = lifecycle.CodeNumberTaken   // an ACL entry number already used in its direction
	CodeUnavailable   Code = "unavailable"               // the daemon has no table yet
	CodeReadFailed         = lifecycle.CodeReadFailed    // the rules file cannot be read
	CodeWriteFailed        = lifecycle.CodeWriteFailed   // the rules file cannot be replaced: nothing changed
	CodeApplyFailed        = lifecycle.CodeApplyFailed   // compiling or preparing the kernel failed: nothing changed
	CodeInternal      Code = "internal"
)

// httpStatus is the reply status of each code: the one table that maps
// the lifecycle's errors (and the transport's) to HTTP.
func httpStatus(c Code) int {
	switch c {
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethod:
		return http.StatusMethodNotAllowed
	case CodeEgressOmitted, CodeReadOnly, CodeStaleNumbers, CodeNumberTaken, lifecycle.CodeLockout, lifecycle.CodeConfirmPending:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeInvalidRules:
		return http.StatusUnprocessableEntity
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError // read_failed, write_failed, apply_failed, internal
}

// Error is an API error: what the server replies and what the client
// returns for a non-2xx reply.
type Error struct {
	Status  int      `json:"-"`
	Code    Code     `json:"code"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"` // every file:line:col error, for invalid_rules
}

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return e.Message
	}
	return e.Message + ":\n  " + strings.Join(e.Details, "\n  ")
}

// apiError is the reply for err: a lifecycle error keeps its code and
// words; anything else is internal.
func apiError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var le *lifecycle.Error
	if errors.As(err, &le) {
		return &Error{Status: httpStatus(le.Code), Code: le.Code, Message: le.Message, Details: le.Details}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()}
}

// errorBody is the JSON envelope of an error reply.
type errorBody struct {
	Error *Error `json:"error"`
}

// The request and reply types of reloads and edits are the lifecycle's
// inputs and outputs; their JSON is the API's.
type (
	ReloadResult     = lifecycle.ReloadResult
	ReloadStats      = lifecycle.ReloadStats
	RuleSpec         = lifecycle.RuleSpec
	ICMPSpec         = lifecycle.ICMPSpec
	RuleInfo         = lifecycle.RuleInfo
	ACLInfo          = lifecycle.ACLInfo
	AddRequest       = lifecycle.AddRequest    // the body of POST /v1/rules
	DeleteRequest    = lifecycle.DeleteRequest // the body of DELETE /v1/rules
	EditResult       = lifecycle.EditResult
	Skipped          = lifecycle.Skipped
	ACLSpec          = lifecycle.ACLSpec
	ACLAddRequest    = lifecycle.ACLAddRequest    // the body of POST /v1/acl
	ACLDeleteRequest = lifecycle.ACLDeleteRequest // the body of DELETE /v1/acl
)

// DefaultGroup is the group runtime edits go to.
const DefaultGroup = lifecycle.DefaultGroup

// Status is the reply of GET /v1/status.
type Status struct {
	Status          string            `json:"status"` // "active", or "waiting" before the first table
	RulesPath       string            `json:"rules_path"`
	Hash            string            `json:"hash"`
	Groups          int               `json:"groups"`
	DefaultIncoming string            `json:"default_incoming"` // always "deny"
	DefaultOutgoing string            `json:"default_outgoing"` // "allow" when a group omits egress, else "deny"
	OpenEgress      []string          `json:"open_egress,omitempty"`
	Reloads         ReloadStats       `json:"reloads"`
	Counters        map[string]uint64 `json:"counters,omitempty"`
	Rules           []RuleInfo        `json:"rules"`
	// ACL is the network-ACL layer, evaluated before the rules; absent
	// when the rules file has none.
	ACL []ACLInfo `json:"acl,omitempty"`
	// Limits are the rules with a limit and the peers over it now;
	// absent when no rule has one.
	Limits     []LimitInfo `json:"limits,omitempty"`
	LimitTable *LimitTable `json:"limit_table,omitempty"`
	// Audit is present when fwd does not enforce its rules (fwd
	// --audit): every flow is accepted, would-drops are counted.
	Audit *Audit `json:"audit,omitempty"`
	// Queues is each queue's health (the queue watchdog's); absent when
	// the daemon does not watch its queues.
	Queues []QueueHealth `json:"queues,omitempty"`
	// Safety is the lockout guard's, the failsafe's and confirmed
	// changes' state; absent when it says nothing (see IsZero).
	Safety *lifecycle.SafetyStatus `json:"safety,omitempty"`
	// Containers are the ports published to containers (DNAT rules of
	// the nat table) and whether the rules admit them; absent when there
	// are none and nothing to warn about.
	Containers *Containers `json:"containers,omitempty"`
	// Fleet is present when fwd runs in fleet mode (fwd --store).
	Fleet *FleetStatus `json:"fleet,omitempty"`
}

// FleetStatus is what a fwd in fleet mode enforces and how fresh it is.
type FleetStatus struct {
	Store    string `json:"store"`
	Host     string `json:"host"`
	Revision int64  `json:"revision"` // of the snapshot in force (0: none)
	Hash     string `json:"hash"`     // its fleet hash
	// StalenessSeconds is how long ago the store last answered (before
	// it ever did: how old the snapshot in force is).
	StalenessSeconds float64 `json:"staleness_seconds"`
	// Error is why the last snapshot built was refused ("" when it was
	// put in force).
	Error string `json:"error,omitempty"`
}
