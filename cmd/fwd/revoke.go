package main

import (
	"context"
	"fmt"
	"time"

	"github.com/fwd-project/fwd/internal/conntrack"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// revoke is the lifecycle's Revoke hook: after a new ACL deny entry went
// live, it deletes the conntrack entries of the connections it matches
// (through ctnetlink, package conntrack), so that an attacker who is
// connected already is cut, not only kept from connecting again. A flow
// matches when its original direction does: for an ingress entry the
// peer opened it (original source in the entry's peers, destination
// port in its ports, its protocol), for an egress entry the host did
// (original destination in the peers). Loopback flows are never cut, as
// they are never filtered.
func (d *daemon) revoke(ctx context.Context, dir direction.Dir, e rules.ACLEntry) (int, error) {
	match, err := aclFlowMatcher(dir, e)
	if err != nil {
		return 0, err
	}
	return deleteFlows(match)
}

// deleteFlows deletes the kernel's conntrack entries of the flows match
// picks, and says how many.
func deleteFlows(match func(conntrack.Flow) bool) (int, error) {
	c, err := conntrack.Dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.DeleteMatching(match)
}

// flowKey is the lookup key of a conntrack flow as a new connection of
// direction dir in its original direction: the peer is its source for
// ingress, its destination for egress.
func flowKey(fl conntrack.Flow, dir direction.Dir) filter.Key {
	k := filter.Key{Dir: dir, Proto: ipproto.Proto(fl.Proto), Peer: fl.Src.Unmap()}
	if dir == direction.Egress {
		k.Peer = fl.Dst.Unmap()
	}
	switch k.Proto {
	case ipproto.TCP, ipproto.UDP:
		k.Port = fl.DstPort
	case ipproto.ICMP, ipproto.ICMPv6:
		k.Type, k.Code = fl.ICMPType, fl.ICMPCode
	}
	return k
}

// aclFlowMatcher returns whether a conntrack flow, by its original
// direction, is a connection the entry e of direction dir matches. It
// asks a table compiled from e alone, so that it matches what fwd's
// table matches.
func aclFlowMatcher(dir direction.Dir, e rules.ACLEntry) (func(conntrack.Flow) bool, error) {
	e.Expires = time.Time{}
	f := &rules.File{Version: 1}
	if dir == direction.Egress {
		f.ACL.Egress = []rules.ACLEntry{e}
	} else {
		f.ACL.Ingress = []rules.ACLEntry{e}
	}
	t, err := filter.Compile(f)
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	return func(fl conntrack.Flow) bool {
		if fl.Src.IsLoopback() || fl.Dst.IsLoopback() {
			return false
		}
		return t.Match(flowKey(fl, dir)).ACL == int32(e.Number)
	}, nil
}
