package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// HostInfo is one host as the store knows it: what the admin assigned and
// what the host itself wrote under its lease.
type HostInfo struct {
	Name     string       `json:"name"`
	Groups   []string     `json:"groups"`             // assigned (assign/HOST); empty when not assigned
	Addrs    []netip.Addr `json:"addrs"`              // from hosts/HOST; empty when not alive
	Alive    bool         `json:"alive"`              // hosts/HOST exists: its lease is alive
	Problems []string     `json:"problems,omitempty"` // values that could not be read, with their keys
}

// GroupMember is one live member of a group.
type GroupMember struct {
	Host  string       `json:"host"`
	Addrs []netip.Addr `json:"addrs"`
}

// HostStatus is what one host last reported enforcing (status/HOST).
type HostStatus struct {
	Host     string `json:"host"`
	Alive    bool   `json:"alive"`
	Reported bool   `json:"reported"` // status/HOST exists
	Revision int64  `json:"revision"` // the store revision it enforces
	// Lag is the store's revision now minus Revision: how many store
	// changes (of any key) the host's table is behind, at most.
	Lag     int64     `json:"lag"`
	Hash    string    `json:"hash"`
	Applied time.Time `json:"applied"`
	// Age is how long ago the host compiled what it enforces.
	Age   time.Duration `json:"age_ns"`
	Stale bool          `json:"stale"` // the host cannot reach the store
	Error string        `json:"error,omitempty"`
	// Want is the hash the host's table has once it enforces the store
	// as it is now (its groups selected, their references resolved to
	// the live members; see Hash); "" when the host is not alive
	// or the policy does not validate. InSync: Hash is Want.
	Want   string `json:"want,omitempty"`
	InSync bool   `json:"in_sync"`
}

// StatusReport is every host's status at one store revision.
type StatusReport struct {
	Revision int64        `json:"revision"`
	Serial   string       `json:"serial"` // policy/serial as stored ("" when none)
	Hosts    []HostStatus `json:"hosts"`
	// PolicyError is why no host's Want could be computed: the store's
	// policy does not validate.
	PolicyError string `json:"policy_error,omitempty"`
}

// hostsRead is assign/, hosts/ and status/ read at one revision.
type hostsRead struct {
	rev    int64
	assign map[string]stored
	hosts  map[string]stored
	status map[string]stored
}

// readHosts reads the kinds asked for (KindAssign, KindHost, KindStatus)
// at one revision, the first read's.
func (a *Admin) readHosts(ctx context.Context, kinds ...Kind) (*hostsRead, error) {
	r := &hostsRead{assign: map[string]stored{}, hosts: map[string]stored{}, status: map[string]stored{}}
	for _, k := range kinds {
		opts := []clientv3.OpOption{clientv3.WithPrefix()}
		if r.rev != 0 {
			opts = append(opts, clientv3.WithRev(r.rev))
		}
		resp, err := a.cli.Get(ctx, a.layout.Dir(k), opts...)
		if err != nil {
			return nil, storeErr(err)
		}
		if r.rev == 0 {
			r.rev = resp.Header.Revision
		}
		m := map[Kind]map[string]stored{KindAssign: r.assign, KindHost: r.hosts, KindStatus: r.status}[k]
		for _, kv := range resp.Kvs {
			if kind, name := a.layout.Parse(string(kv.Key)); kind == k {
				m[name] = stored{value: kv.Value, mod: kv.ModRevision, create: kv.CreateRevision}
			}
		}
	}
	return r, nil
}

// assigned decodes an assign/ value: a JSON list of group names.
func (a *Admin) assigned(host string, s stored) ([]string, error) {
	var groups []string
	if err := json.Unmarshal(s.value, &groups); err != nil {
		return nil, fmt.Errorf("%s: bad value %q: expected a JSON list of group names: %w", a.layout.Key(KindAssign, host), clip(s.value), err)
	}
	return groups, nil
}

// addrs decodes a hosts/ value.
func (a *Admin) addrs(host string, s stored) ([]netip.Addr, error) {
	var v HostValue
	if err := json.Unmarshal(s.value, &v); err != nil {
		return nil, fmt.Errorf("%s: bad value %q: expected JSON {\"addrs\": [...]}: %w", a.layout.Key(KindHost, host), clip(s.value), err)
	}
	return v.Addrs, nil
}

// Assign attaches host to exactly groups (replacing what it had), each of
// which must exist; no groups removes the assignment. The write is
// guarded so that no named group is deleted meanwhile.
func (a *Admin) Assign(ctx context.Context, host string, groups ...string) error {
	if err := CheckName(host); err != nil {
		return fmt.Errorf("%w: host: %w", ErrRefused, err)
	}
	groups = slices.Compact(slices.Sorted(slices.Values(groups)))
	key := a.layout.Key(KindAssign, host)
	if len(groups) == 0 {
		_, err := a.cli.Delete(ctx, key)
		if err != nil {
			return storeErr(err)
		}
		return nil
	}
	if len(groups) > a.opts.MaxTxnOps {
		return fmt.Errorf("%w: %d groups: one transaction compares at most %d keys", ErrLimit, len(groups), a.opts.MaxTxnOps)
	}
	value, _ := json.Marshal(groups) // strings: cannot fail
	for try := 0; ; try++ {
		r, err := a.readPolicy(ctx)
		if err != nil {
			return err
		}
		var cmps []clientv3.Cmp
		for _, g := range groups {
			s, ok := r.groups[g]
			if !ok {
				return fmt.Errorf("%w: no group %q in the store (fwctl fleet export lists the groups)", ErrRefused, g)
			}
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(a.layout.Key(KindGroup, g)), "=", s.create))
		}
		resp, err := a.cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(key, string(value))).Commit()
		if err != nil {
			return storeErr(err)
		}
		if resp.Succeeded {
			return nil
		}
		if try >= a.opts.Retries {
			return fmt.Errorf("assign %s: %w", host, ErrConflict)
		}
		if err := backoff(ctx, try); err != nil {
			return storeErr(err)
		}
	}
}

// checkAssigned refuses deleting groups that a host is assigned (read at
// rev; the apply's transaction guards the assignments from rev on).
func (a *Admin) checkAssigned(ctx context.Context, rev int64, deleted []string) error {
	if len(deleted) == 0 {
		return nil
	}
	resp, err := a.cli.Get(ctx, a.layout.Dir(KindAssign), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return storeErr(err)
	}
	users := map[string][]string{} // group -> hosts
	for _, kv := range resp.Kvs {
		kind, host := a.layout.Parse(string(kv.Key))
		if kind != KindAssign {
			continue
		}
		groups, err := a.assigned(host, stored{value: kv.Value})
		if err != nil {
			continue // an unreadable assignment names no group fwd uses
		}
		for _, g := range groups {
			if slices.Contains(deleted, g) {
				users[g] = append(users[g], host)
			}
		}
	}
	if len(users) == 0 {
		return nil
	}
	var msgs []string
	for _, g := range slices.Sorted(maps.Keys(users)) {
		msgs = append(msgs, fmt.Sprintf("group %s is assigned to %s", g, strings.Join(users[g], ", ")))
	}
	return fmt.Errorf("%w: the apply would delete groups that hosts are assigned: %s: assign those hosts other groups first (fwctl fleet assign HOST GROUP...)", ErrRefused, strings.Join(msgs, "; "))
}

// Hosts lists every host that is assigned or alive, by name.
func (a *Admin) Hosts(ctx context.Context) ([]HostInfo, int64, error) {
	r, err := a.readHosts(ctx, KindAssign, KindHost)
	if err != nil {
		return nil, 0, err
	}
	names := slices.Sorted(maps.Keys(r.assign))
	for n := range r.hosts {
		if _, ok := r.assign[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := make([]HostInfo, 0, len(names))
	for _, n := range names {
		h := HostInfo{Name: n, Groups: []string{}, Addrs: []netip.Addr{}}
		if s, ok := r.assign[n]; ok {
			g, err := a.assigned(n, s)
			if err != nil {
				h.Problems = append(h.Problems, err.Error())
			} else {
				h.Groups = g
			}
		}
		if s, ok := r.hosts[n]; ok {
			h.Alive = true
			addrs, err := a.addrs(n, s)
			if err != nil {
				h.Problems = append(h.Problems, err.Error())
			} else {
				h.Addrs = addrs
			}
		}
		out = append(out, h)
	}
	return out, r.rev, nil
}

// Members lists the live members of group (assigned and alive) and their
// addresses, by host name.
func (a *Admin) Members(ctx context.Context, group string) ([]GroupMember, int64, error) {
	resp, err := a.cli.Get(ctx, a.layout.Key(KindGroup, group), clientv3.WithCountOnly())
	if err != nil {
		return nil, 0, storeErr(err)
	}
	if resp.Count == 0 {
		return nil, resp.Header.Revision, fmt.Errorf("%w: no group %q in the store (fwctl fleet export lists the groups)", ErrRefused, group)
	}
	hosts, rev, err := a.Hosts(ctx)
	if err != nil {
		return nil, 0, err
	}
	out := []GroupMember{}
	for _, h := range hosts {
		if h.Alive && slices.Contains(h.Groups, group) {
			out = append(out, GroupMember{Host: h.Name, Addrs: h.Addrs})
		}
	}
	return out, rev, nil
}

// Status reports, for every host assigned, alive or reporting, what it
// enforces, how far behind the store it is, and whether its table is
// the one the store means for it now.
func (a *Admin) Status(ctx context.Context) (StatusReport, error) {
	r, err := a.readHosts(ctx, KindStatus, KindHost, KindAssign)
	if err != nil {
		return StatusReport{}, err
	}
	rep := StatusReport{Revision: r.rev, Hosts: []HostStatus{}}
	pol, err := a.readPolicy(ctx, clientv3.WithRev(r.rev))
	if err != nil {
		return rep, err
	}
	rep.Serial = string(pol.serial.value)
	want, err := a.wanted(r, pol)
	if err != nil {
		rep.PolicyError = err.Error()
	}
	names := map[string]bool{}
	for _, m := range []map[string]stored{r.status, r.hosts, r.assign} {
		for n := range m {
			names[n] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		hs := a.hostStatus(r, n)
		hs.Want = want[n]
		hs.InSync = hs.Reported && hs.Want != "" && hs.Hash == hs.Want
		rep.Hosts = append(rep.Hosts, hs)
	}
	return rep, nil
}

// hostStatus is host n's status value as read in r.
func (a *Admin) hostStatus(r *hostsRead, n string) HostStatus {
	hs := HostStatus{Host: n}
	_, hs.Alive = r.hosts[n]
	s, ok := r.status[n]
	if !ok {
		return hs
	}
	hs.Reported = true
	var v StatusValue
	if err := json.Unmarshal(s.value, &v); err != nil {
		hs.Error = fmt.Sprintf("%s: bad value %q: %v", a.layout.Key(KindStatus, n), clip(s.value), err)
		return hs
	}
	hs.Revision, hs.Hash, hs.Applied, hs.Stale, hs.Error = v.Revision, v.Hash, v.Applied, v.Stale, v.Error
	hs.Lag = r.rev - v.Revision
	if !v.Applied.IsZero() {
		hs.Age = a.opts.now().Sub(v.Applied)
	}
	return hs
}

// wanted computes, for every alive host, the hash of the table
// the store means for it: the policy narrowed to its groups, their
// references resolved to the live members' addresses (what each host's
// syncer compiles, and hashes with Hash).
func (a *Admin) wanted(r *hostsRead, pol *policyRead) (map[string]string, error) {
	full, err := pol.file(a.opts.Rules)
	if err != nil || full == nil {
		return nil, err
	}
	assigned := map[string][]string{}
	members := map[string][]netip.Prefix{}
	for h, s := range r.assign {
		groups, err := a.assigned(h, s)
		if err != nil {
			continue
		}
		assigned[h] = groups
		hv, alive := r.hosts[h]
		if !alive {
			continue
		}
		addrs, err := a.addrs(h, hv)
		if err != nil {
			continue
		}
		for _, g := range groups {
			members[g] = append(members[g], rules.HostPrefixes(addrs)...)
		}
	}
	out := map[string]string{}
	for h := range r.hosts { // alive; assigned no group, it enforces none
		sel, err := full.Select(assigned[h])
		if err != nil {
			continue // the host refuses it too: Error says so
		}
		out[h] = Hash(sel.ResolveGroups(func(g string) []netip.Prefix { return members[g] }))
	}
	return out, nil
}

func (o AdminOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}
