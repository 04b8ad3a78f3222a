// Package direction says which way a connection goes relative to the
// host: the one place fwd spells it. It is a leaf of the module's import
// graph.
package direction

import "fmt"

// Dir is the direction of a connection relative to the host. The zero
// value is Ingress.
type Dir uint8

const (
	// Ingress is a connection opened by a peer towards the host; the peer
	// is the packet's source.
	Ingress Dir = iota
	// Egress is a connection opened by the host towards a peer; the peer
	// is the packet's destination.
	Egress
)

// String is the short spelling that the check contract and the API use:
// "in" or "out".
func (d Dir) String() string {
	if d == Egress {
		return "out"
	}
	return "in"
}

// Key is the rules file's list for the direction: "ingress" or "egress".
func (d Dir) Key() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// PeerWord is the word a rule names its peers with: "from" for ingress,
// "to" for egress.
func (d Dir) PeerWord() string {
	if d == Egress {
		return "to"
	}
	return "from"
}

// Parse reads "in" or "out", as the API and the check contract write a
// direction.
func Parse(s string) (Dir, error) {
	switch s {
	case "in":
		return Ingress, nil
	case "out":
		return Egress, nil
	}
	return Ingress, fmt.Errorf("bad dir %q: expected \"in\" or \"out\"", s)
}
