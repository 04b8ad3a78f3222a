package fleet

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// state is a host's copy of the keys it follows (the prefix up to
// status/, which hosts rewrite often and nobody needs to watch), as of
// revision rev, decoded once as the keys arrive. It is owned by the
// syncer's goroutine.
type state struct {
	layout Layout
	// rev is the store revision the copy reflects: every event at or
	// below it has been applied, so a later copy of one (a duplicate
	// delivered again by the server) is skipped.
	rev int64
	// mods is every key's mod revision, for the keys-only check.
	mods   map[string]int64
	policy Policy
	// assign and hosts hold the decoded values, errs the keys whose
	// value did not decode (the snapshot refuses them when they matter).
	assign map[string][]string
	hosts  map[string][]netip.Addr
	errs   map[string]error
	// policyDirty: a policy key changed since the last build; changed
	// names the groups, listsChanged says a prefix list changed.
	policyDirty  bool
	changed      map[string]change
	listsChanged bool
	// dirty: some key changed since the last build; membersDirty: an
	// assign/ or hosts/ key did.
	dirty, membersDirty bool
}

func newState(l Layout) *state {
	return &state{
		layout:  l,
		mods:    map[string]int64{},
		policy:  Policy{Groups: map[string][]byte{}, PrefixLists: map[string][]byte{}},
		assign:  map[string][]string{},
		hosts:   map[string][]netip.Addr{},
		errs:    map[string]error{},
		changed: map[string]change{},
		dirty:   true, policyDirty: true, listsChanged: true, membersDirty: true,
	}
}

// put records key=value at mod revision mod.
func (st *state) put(key string, value []byte, mod int64) {
	st.mods[key] = mod
	st.dirty = true
	delete(st.errs, key)
	k, name := st.layout.Parse(key)
	switch k {
	case KindGroup:
		c := changedValue
		if _, ok := st.policy.Groups[name]; !ok {
			c = changedExistence
		}
		st.policy.Groups[name] = slices.Clone(value)
		st.policyDirty, st.changed[name] = true, st.changed[name]|c
	case KindPrefixList:
		st.policy.PrefixLists[name] = slices.Clone(value)
		st.policyDirty, st.listsChanged = true, true
	case KindAssign:
		st.membersDirty = true
		var groups []string
		if err := json.Unmarshal(value, &groups); err != nil {
			delete(st.assign, name)
			st.errs[key] = fmt.Errorf("%s: %w", key, err)
			return
		}
		st.assign[name] = groups
	case KindHost:
		st.membersDirty = true
		var v HostValue
		if err := json.Unmarshal(value, &v); err != nil {
			delete(st.hosts, name)
			st.errs[key] = fmt.Errorf("%s: %w", key, err)
			return
		}
		st.hosts[name] = v.Addrs
	}
}

// change says how a group's key changed.
type change uint8

const (
	changedValue     change = 1 << iota // its value
	changedExistence                    // created or deleted
)

// takePolicyChanges reports whether a policy change since the last call
// can change what this host enforces, and forgets them: a change of a
// prefix list or of one of mine, or the creation or deletion of a group
// of closure (mine and every group they reach by references: a
// reference to a deleted group makes the policy invalid). A referenced
// group's rules do not matter here, only its members.
func (st *state) takePolicyChanges(mine []string, closure map[string]bool) bool {
	hit := st.listsChanged
	for g, c := range st.changed {
		hit = hit || slices.Contains(mine, g) || (closure[g] && c&changedExistence != 0)
	}
	st.policyDirty, st.listsChanged = false, false
	clear(st.changed)
	return hit
}

// del records the deletion of key.
func (st *state) del(key string) {
	if _, ok := st.mods[key]; !ok {
		return
	}
	delete(st.mods, key)
	delete(st.errs, key)
	st.dirty = true
	k, name := st.layout.Parse(key)
	switch k {
	case KindGroup:
		delete(st.policy.Groups, name)
		st.policyDirty, st.changed[name] = true, st.changed[name]|changedExistence
	case KindPrefixList:
		delete(st.policy.PrefixLists, name)
		st.policyDirty, st.listsChanged = true, true
	case KindAssign:
		delete(st.assign, name)
		st.membersDirty = true
	case KindHost:
		delete(st.hosts, name)
		st.membersDirty = true
	}
}

// applyEvents applies one whole watch response. Events at or below the
// copy's revision were applied already and are skipped, which makes
// applying an event twice harmless. It returns how many it skipped.
func (st *state) applyEvents(evs []*clientv3.Event) int {
	base, skipped := st.rev, 0
	for _, ev := range evs {
		kv := ev.Kv
		if kv.ModRevision <= base {
			skipped++
			continue
		}
		if ev.Type == mvccpb.DELETE {
			st.del(string(kv.Key))
		} else {
			st.put(string(kv.Key), kv.Value, kv.ModRevision)
		}
		if kv.ModRevision > st.rev {
			st.rev = kv.ModRevision
		}
	}
	return skipped
}
