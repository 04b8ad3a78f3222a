// Package verdict is the answer fwd gives a packet: the one place it is
// spelled. It is a leaf of the module's import graph.
package verdict

// Verdict is accept or drop. The zero value is Drop, so a verdict nobody
// set fails closed.
type Verdict uint8

const (
	// Drop discards the packet silently.
	Drop Verdict = iota
	// Accept lets the packet continue.
	Accept
)

func (v Verdict) String() string {
	if v == Accept {
		return "accept"
	}
	return "drop"
}
