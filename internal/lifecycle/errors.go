package lifecycle

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
)

// Code is a stable error code. The control API sends it as is: scripts
// may depend on it.
type Code string

// The lifecycle's error codes. The transport maps each to its reply
// status; the strings are part of the API.
const (
	CodeBadRequest    Code = "bad_request"    // a bad value in the request
	CodeNotFound      Code = "not_found"      // no rule to delete
	CodeInvalidRules  Code = "invalid_rules"  // the rules file (or the edit's result) has errors: details lists them
	CodeEgressOmitted Code = "egress_omitted" // egress rule for a group that allows all outbound
	CodeReadOnly      Code = "read_only"      // edits are refused: fwd runs on its shipped default rules
	CodeStaleNumbers  Code = "stale_numbers"  // rule numbers given, but the file changed since the live rules were loaded
	CodeNumberTaken   Code = "number_taken"   // an ACL entry number that an entry of the direction already has
	CodeReadFailed    Code = "read_failed"    // the rules file cannot be read
	CodeWriteFailed   Code = "write_failed"   // the rules file cannot be replaced: nothing changed
	CodeApplyFailed   Code = "apply_failed"   // compiling or preparing the kernel failed: nothing changed
)

// Error is what the lifecycle returns for a change it did not make: a
// stable code, a message and, for invalid rules, every file:line:col
// problem.
type Error struct {
	Code    Code     `json:"code"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"` // every file:line:col error, for invalid_rules
	// cause is what went wrong underneath (a rules.ErrorList for invalid
	// rules), for errors.As.
	cause error
}

// Unwrap returns the cause, such as the rules.ErrorList of invalid rules.
func (e *Error) Unwrap() error { return e.cause }

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return e.Message
	}
	return e.Message + ":\n  " + strings.Join(e.Details, "\n  ")
}

// refused reports whether e turns a request down (the request was
// wrong) rather than failing to carry it out; only failures count in the
// reload statistics.
func (e *Error) refused() bool {
	switch e.Code {
	case CodeNotFound, CodeBadRequest, CodeEgressOmitted, CodeStaleNumbers, CodeReadOnly, CodeNumberTaken, CodeLockout, CodeConfirmPending:
		return true
	}
	return false
}

func readError(path string, err error) *Error {
	return &Error{Code: CodeReadFailed, Message: fmt.Sprintf("read %s: %v", path, unwrapPath(err)), cause: err}
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func rulesError(path, what string, err error) *Error {
	var list rules.ErrorList
	if !errors.As(err, &list) {
		return &Error{Code: CodeInvalidRules, Message: fmt.Sprintf("%s %s: %v", path, what, err), cause: err}
	}
	e := &Error{Code: CodeInvalidRules, cause: list,
		Message: fmt.Sprintf("%s %s (%d error%s)", path, what, list.Count(), plural(list.Count()))}
	for _, le := range list {
		e.Details = append(e.Details, le.Error())
	}
	return e
}

func badRequest(msg string) *Error {
	return &Error{Code: CodeBadRequest, Message: msg}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
