// Package fleet is fwd's fleet mode: the security groups of many hosts
// kept in etcd v3, group references resolved from live membership, and
// every host compiling only whole, consistent snapshots.
//
// Key layout under a prefix (default /fwd/, --store-prefix):
//
//	PREFIX policy/groups/NAME        one group, YAML: exactly one item of a rules file's groups list
//	PREFIX policy/prefix_lists/NAME  one prefix list, YAML: one item of prefix_lists
//	PREFIX policy/serial             decimal, bumped by every whole-policy apply
//	PREFIX assign/HOST               the groups HOST is attached to, a JSON list of names (written by the admin)
//	PREFIX hosts/HOST                HOST's presence and addresses, JSON HostValue, under HOST's lease
//	PREFIX status/HOST               what HOST enforces, JSON StatusValue, under HOST's lease
//
// A host is a member of a group only when assign/HOST names the group and
// hosts/HOST exists (its lease is alive). The policy's groups and prefix
// lists read together form one rules file (see Policy), so a reference
// to an undefined group is refused exactly as in a single-host file.
package fleet

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// DefaultPrefix is the key prefix when --store-prefix is not given.
const DefaultPrefix = "/fwd/"

// Kind says which part of the layout a key belongs to.
type Kind int

// The kinds of key, in the order of the layout above.
const (
	KindUnknown Kind = iota
	KindGroup
	KindPrefixList
	KindSerial
	KindAssign
	KindHost
	KindStatus
)

var kindDirs = [...]string{
	KindGroup:      "policy/groups/",
	KindPrefixList: "policy/prefix_lists/",
	KindAssign:     "assign/",
	KindHost:       "hosts/",
	KindStatus:     "status/",
}

const serialKey = "policy/serial"

// nameRE is what a group, prefix list or host name may be in a key: the
// rules file's name characters plus dots (host names).
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

// Layout places fwd's keys under one prefix.
type Layout struct {
	Prefix string // ends in "/"
}

// NewLayout checks prefix and returns its layout; an empty prefix means
// DefaultPrefix.
func NewLayout(prefix string) (Layout, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasPrefix(prefix, "/") || !strings.HasSuffix(prefix, "/") || strings.Contains(prefix, "//") {
		return Layout{}, fmt.Errorf("bad store prefix %q: expected a path that starts and ends with /, such as /fwd/", prefix)
	}
	return Layout{Prefix: prefix}, nil
}

// CheckName reports whether s may name a group, prefix list or host in a key.
func CheckName(s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("bad name %q: expected letters, digits, '.', '_' or '-', starting with a letter or digit", s)
	}
	return nil
}

// Key is the key of name of kind k (name is ignored for KindSerial).
func (l Layout) Key(k Kind, name string) string {
	if k == KindSerial {
		return l.Prefix + serialKey
	}
	return l.Prefix + kindDirs[k] + name
}

// Dir is the prefix of every key of kind k (for a prefix read or watch).
func (l Layout) Dir(k Kind) string { return l.Prefix + kindDirs[k] }

// Parse names the kind and name of key; KindUnknown for a key of the
// prefix that is not part of the layout (it is ignored, never an error:
// a newer fwd may write more).
func (l Layout) Parse(key string) (Kind, string) {
	rest, ok := strings.CutPrefix(key, l.Prefix)
	if !ok {
		return KindUnknown, ""
	}
	if rest == serialKey {
		return KindSerial, ""
	}
	for k, dir := range kindDirs {
		if dir == "" {
			continue
		}
		if name, ok := strings.CutPrefix(rest, dir); ok && CheckName(name) == nil {
			return Kind(k), name
		}
	}
	return KindUnknown, ""
}

// HostValue is the value of hosts/HOST: the host's addresses, written by
// the host itself under its lease.
type HostValue struct {
	Addrs []netip.Addr `json:"addrs"`
}

// StatusValue is the value of status/HOST: what the host enforces now.
type StatusValue struct {
	Revision int64     `json:"revision"` // the store revision of the snapshot enforced
	Hash     string    `json:"hash"`     // the compiled policy's hash (see Policy.Hash)
	Applied  time.Time `json:"applied"`  // when that snapshot was compiled
	Stale    bool      `json:"stale"`    // the store has been unreachable since Applied
	Error    string    `json:"error,omitempty"`
}

// ErrConflict is returned by an edit whose compare-and-swap lost to a
// concurrent writer after its retries.
var ErrConflict = errors.New("the policy changed during the edit")
