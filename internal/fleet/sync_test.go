package fleet

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/fleet/etcdtest"
	"github.com/fwd-project/fwd/internal/rules"
)

// TestSyncFollowsEdits: a host enforces its assigned groups only, and
// follows an edit, an assignment change and a group's deletion.
func TestSyncFollowsEdits(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	put(t, c, gkey("web"), group("web", "80", "0.0.0.0/0"), gkey("db"), group("db", "5432", "198.18.0.0/24"), akey("h1"), assign("web"))
	// Pages of two keys: the first read takes several, pinned at one
	// revision.
	h := startHost(t, c, "h1", func(cfg *SyncConfig) { cfg.PageSize = 2 })
	s := h.wait(t, "with web", func(s *Snapshot) bool { return hasPort(s, "web", 80) })
	if s.File.GroupIndex("db") >= 0 {
		t.Fatalf("h1 enforces db, which it is not assigned")
	}
	put(t, c, gkey("web"), group("web", "443", "0.0.0.0/0"))
	h.wait(t, "with web on 443", func(s *Snapshot) bool { return hasPort(s, "web", 443) && !hasPort(s, "web", 80) })
	put(t, c, akey("h1"), assign("web", "db"))
	h.wait(t, "with db", func(s *Snapshot) bool { return hasPort(s, "db", 5432) })
	rev := put(t, c, akey("h1"), assign("db"), gkey("web"), "")
	s = h.wait(t, "without web", func(s *Snapshot) bool { return s.File.GroupIndex("web") < 0 })
	if s.Revision != rev {
		t.Fatalf("snapshot revision %d, want the transaction's %d", s.Revision, rev)
	}
	st := h.waitStatus(t, "at the last revision", func(st SyncStatus) bool { return st.Revision == rev })
	if st.Refused != 0 || st.Hash != s.Hash() {
		t.Fatalf("status %+v, want no refusal and hash %s", st, s.Hash())
	}
}

// TestSyncAppliesTransactionsWhole moves a host from one group to a new
// one in one transaction (create the new group, reassign, delete the
// old), many times, with coalescing off: a host that applied part of
// such a transaction would be assigned a group that does not exist and
// refuse a snapshot, or enforce neither group or both.
func TestSyncAppliesTransactionsWhole(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	put(t, c, gkey("g0"), group("g0", "1000", "0.0.0.0/0"), akey("h1"), assign("g0"))
	h := startHost(t, c, "h1", func(cfg *SyncConfig) { cfg.Quiet, cfg.MaxWait = time.Nanosecond, time.Nanosecond })
	h.wait(t, "with g0", func(s *Snapshot) bool { return hasPort(s, "g0", 1000) })
	const moves = 30
	for i := 1; i <= moves; i++ {
		prev, next := name(i-1), name(i)
		put(t, c, gkey(next), group(next, port(i), "0.0.0.0/0"), akey("h1"), assign(next), gkey(prev), "")
	}
	last := name(moves)
	h.wait(t, "with "+last, func(s *Snapshot) bool { return hasPort(s, last, uint16(1000+moves)) })
	close(h.got)
	for s := range h.got { // none is half a move
		if len(s.File.Groups) != 1 {
			t.Errorf("snapshot at %d enforces %d groups, want 1", s.Revision, len(s.File.Groups))
		}
	}
	if st := h.s.Status(); st.Refused != 0 {
		t.Fatalf("%d snapshots refused (last error %q): a transaction was applied in part", st.Refused, st.Error)
	}
}

func name(i int) string { return "g" + strconv.Itoa(i) }
func port(i int) string { return strconv.Itoa(1000 + i) }

// TestSyncRefusesCorruptValues: a policy value that does not decode, or
// an assignment that is not a JSON list, is refused; the snapshot in
// force stays, the refusal is reported, and a repaired value is applied.
func TestSyncRefusesCorruptValues(t *testing.T) {
	tests := []struct {
		name       string
		key, value string
	}{
		{"bad yaml", gkey("web"), "name: web\ningress: [\n"},
		{"unknown field", gkey("web"), "name: web\ningres: []\n"},
		{"name differs from key", gkey("web"), group("other", "80", "0.0.0.0/0")},
		{"bad assignment", akey("h1"), "web"},
		{"undefined group assigned", akey("h1"), assign("web", "nosuch")},
	}
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put(t, c, gkey("web"), group("web", "80", "0.0.0.0/0"), akey("h1"), assign("web"))
			var reports []StatusValue
			h := startHost(t, c, "h1", func(cfg *SyncConfig) {
				cfg.Report = func(v StatusValue) { reports = append(reports, v) }
			})
			good := h.wait(t, "with web", func(s *Snapshot) bool { return hasPort(s, "web", 80) })
			put(t, c, tt.key, tt.value)
			st := h.waitStatus(t, "refused", func(st SyncStatus) bool { return st.Refused > 0 })
			if st.Hash != good.Hash() || st.Error == "" {
				t.Fatalf("after a corrupt %s: status %+v, want the previous hash %s kept and an error", tt.key, st, good.Hash())
			}
			t.Logf("refused: %s", st.Error)
			select {
			case s := <-h.got:
				t.Fatalf("a snapshot was applied from a corrupt store: %s", s.Hash())
			default:
			}
			put(t, c, gkey("web"), group("web", "8080", "0.0.0.0/0"), akey("h1"), assign("web"))
			h.wait(t, "repaired", func(s *Snapshot) bool { return hasPort(s, "web", 8080) })
			// Apply runs before the status says so.
			h.waitStatus(t, "without error after the repair", func(st SyncStatus) bool { return st.Error == "" })
			h.stop()
			if n := len(reports); n == 0 || reports[n-1].Error != "" {
				t.Fatalf("reports %+v: want the last one without error", reports)
			}
		})
	}
}

// TestSyncCompactedWhileBehind: a host cut from the store misses a
// group's deletion and an edit, the history is compacted past them; when
// it reconnects its watch is refused (ErrCompacted), it reads everything
// again and drops the group that vanished.
func TestSyncCompactedWhileBehind(t *testing.T) {
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	p := startProxy(t, srv)
	put(t, admin, gkey("web"), group("web", "80", "0.0.0.0/0"), gkey("db"), group("db", "5432", "0.0.0.0/0"), akey("h1"), assign("web", "db"))
	h := startHost(t, newClient(t, []string{p.Addr()}), "h1", nil)
	h.wait(t, "with web and db", func(s *Snapshot) bool { return hasPort(s, "web", 80) && hasPort(s, "db", 5432) })
	p.Cut()
	put(t, admin, gkey("db"), "", akey("h1"), assign("web"))
	rev := put(t, admin, gkey("web"), group("web", "443", "0.0.0.0/0"))
	for range 5 {
		rev = put(t, admin, "/fwd/policy/serial", "1")
	}
	srv.Compact(t, rev)
	p.Restore()
	s := h.wait(t, "without db, web on 443", func(s *Snapshot) bool { return hasPort(s, "web", 443) && s.File.GroupIndex("db") < 0 })
	if s.Revision < rev {
		t.Fatalf("snapshot revision %d, want at least %d", s.Revision, rev)
	}
	t.Logf("status after reconnecting: %+v", h.s.Status())
}

// TestSyncPartition: while the store is cut off the host keeps the
// snapshot in force and its last contact stops advancing (staleness
// grows); after the partition it applies what changed meanwhile.
func TestSyncPartition(t *testing.T) {
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	p := startProxy(t, srv)
	put(t, admin, gkey("web"), group("web", "80", "0.0.0.0/0"), akey("h1"), assign("web"))
	h := startHost(t, newClient(t, []string{p.Addr()}), "h1", func(cfg *SyncConfig) { cfg.ProbeEvery = 20 * time.Millisecond })
	good := h.wait(t, "with web", func(s *Snapshot) bool { return hasPort(s, "web", 80) })
	p.Cut()
	cutAt := time.Now()
	put(t, admin, gkey("web"), group("web", "443", "0.0.0.0/0"))
	// Contact stops before the cut plus a probe's timeout.
	time.Sleep(200 * time.Millisecond)
	before := h.s.Status()
	time.Sleep(200 * time.Millisecond)
	during := h.s.Status()
	if during.Contact != before.Contact || during.Hash != good.Hash() {
		t.Fatalf("during the partition: status %+v then %+v, want contact frozen and hash %s kept", before, during, good.Hash())
	}
	if during.Contact.After(cutAt.Add(100 * time.Millisecond)) {
		t.Logf("last contact %v after the cut", during.Contact.Sub(cutAt))
	}
	p.Restore()
	h.wait(t, "web on 443", func(s *Snapshot) bool { return hasPort(s, "web", 443) })
	after := h.waitStatus(t, "in contact again", func(st SyncStatus) bool { return st.Contact.After(during.Contact) })
	if after.Staleness(time.Now()) > 10*time.Second {
		t.Fatalf("staleness %v after the partition healed", after.Staleness(time.Now()))
	}
}

// TestSyncRestartWithStoreDown: a host saves every snapshot it applies;
// restarted while the store is down, it loads that snapshot (the same
// hash, compiled) and keeps it while it cannot reach the store.
func TestSyncRestartWithStoreDown(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	path := t.TempDir() + "/" + SnapshotFile
	put(t, c, gkey("web"), group("web", "80", "198.18.0.0/24"), gkey("db"), group("db", "5432", "0.0.0.0/0"), akey("h1"), assign("web"))
	h := startHost(t, c, "h1", func(cfg *SyncConfig) { cfg.SnapshotPath = path })
	applied := h.wait(t, "with web", func(s *Snapshot) bool { return hasPort(s, "web", 80) })
	h.stop()
	srv.Stop()

	loaded, saved, err := LoadSnapshot(path, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Hash() != applied.Hash() || loaded.Revision != applied.Revision || saved.IsZero() || loaded.Table == nil {
		t.Fatalf("loaded snapshot rev %d hash %s, want rev %d hash %s, compiled", loaded.Revision, loaded.Hash(), applied.Revision, applied.Hash())
	}
	if !hasPort(loaded, "web", 80) || loaded.File.GroupIndex("db") >= 0 {
		t.Fatalf("loaded snapshot enforces %v, want web only", loaded.File.Groups)
	}
	h2 := startHost(t, c, "h1", func(cfg *SyncConfig) { cfg.Initial = loaded; cfg.Retry = 10 * time.Millisecond })
	time.Sleep(300 * time.Millisecond) // retries against the stopped store
	if st := h2.s.Status(); st.Hash != applied.Hash() || st.Snapshots != 0 || !st.Contact.IsZero() {
		t.Fatalf("with the store down: status %+v, want the loaded hash %s and no contact", st, applied.Hash())
	}
	srv.Start()
	h2.waitStatus(t, "in contact", func(st SyncStatus) bool { return !st.Contact.IsZero() })
	if st := h2.s.Status(); st.Snapshots != 0 || st.Hash != applied.Hash() {
		t.Fatalf("after the store came back: status %+v, want the same snapshot, not applied again", st)
	}
}

// TestSnapshotLoadRefusesTampering: a saved snapshot whose content no
// longer resolves to its hash is refused.
func TestSnapshotLoadRefusesTampering(t *testing.T) {
	p := Policy{Groups: map[string][]byte{"web": []byte(group("web", "80", "0.0.0.0/0"))}}
	f, err := Resolve(p, []string{"web"}, nil, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/" + SnapshotFile
	s := &Snapshot{Revision: 7, Host: "h1", Groups: []string{"web"}, Policy: p, File: f}
	if err := s.Save(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSnapshot(path, rules.Options{}); err != nil {
		t.Fatalf("load: %v", err)
	}
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), "80", "81", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSnapshot(path, rules.Options{}); err == nil || !strings.Contains(err.Error(), "hash") {
		t.Fatalf("load of a tampered snapshot: %v, want a hash mismatch", err)
	}
}

// hostValue is the value of hosts/NAME holding addrs.
func hostValue(addrs ...string) string {
	return `{"addrs":["` + strings.Join(addrs, `","`) + `"]}`
}

// members lists the resolved members of group g's first ingress rule.
func members(s *Snapshot, g string) []string {
	i := s.File.GroupIndex(g)
	if i < 0 || len(s.File.Groups[i].Ingress) == 0 {
		return nil
	}
	var out []string
	for _, p := range s.File.Groups[i].Ingress[0].Members {
		out = append(out, p.Addr().String())
	}
	return out
}

// TestSyncResolvesMembers: db allows 5432 from group:web; web's members
// are the hosts assigned to web whose hosts/ key exists. Members come
// and go with assignments and presence; a change to a group that h1
// neither joins nor references compiles nothing.
func TestSyncResolvesMembers(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	put(t, c, gkey("web"), group("web", "80", "0.0.0.0/0"), gkey("db"), group("db", "5432", "group:web"),
		gkey("other"), group("other", "22", "group:other"),
		akey("h1"), assign("db"), akey("h2"), assign("web"), hkey("h2"), hostValue("198.18.0.2"),
		akey("h3"), assign("web"))
	// No coalescing: each response is built on its own.
	h := startHost(t, c, "h1", func(cfg *SyncConfig) { cfg.Quiet, cfg.MaxWait = time.Nanosecond, time.Nanosecond })
	same := func(want ...string) func(*Snapshot) bool {
		return func(s *Snapshot) bool { return slices.Equal(members(s, "db"), want) }
	}
	h.wait(t, "with h2 in web", same("198.18.0.2"))
	put(t, c, hkey("h3"), hostValue("198.18.0.3", "2001:db8::3"))
	h.wait(t, "with h3 alive", same("198.18.0.2", "198.18.0.3", "2001:db8::3"))
	put(t, c, hkey("h2"), "")
	h.wait(t, "with h2 gone", same("198.18.0.3", "2001:db8::3"))
	before := h.waitStatus(t, "settled", func(st SyncStatus) bool { return st.Compiles == st.Snapshots })
	put(t, c, akey("h4"), assign("other"), hkey("h4"), hostValue("198.18.0.4"), gkey("other"), group("other", "23", "group:other"))
	put(t, c, akey("h3"), assign("other"))
	h.wait(t, "with h3 moved out of web", same())
	after := h.s.Status()
	if after.Compiles != before.Compiles+1 {
		t.Fatalf("compiles went from %d to %d: the change to group other, which h1 neither joins nor references, was compiled", before.Compiles, after.Compiles)
	}
}

// TestSyncStoreWentBack: the store is replaced by one at an older
// revision (a restore, a new cluster): the host's watch from its
// revision would wait for ever; the probe sees the revision go backwards
// and the host reads everything again, dropping what vanished.
func TestSyncStoreWentBack(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	put(t, c, gkey("web"), group("web", "80", "0.0.0.0/0"), gkey("db"), group("db", "5432", "0.0.0.0/0"), akey("h1"), assign("web", "db"))
	for range 20 {
		put(t, c, "/fwd/policy/serial", "1")
	}
	h := startHost(t, c, "h1", func(cfg *SyncConfig) { cfg.ProbeEvery = 50 * time.Millisecond })
	h.wait(t, "with web and db", func(s *Snapshot) bool { return hasPort(s, "web", 80) && hasPort(s, "db", 5432) })
	srv.Stop()
	if err := os.RemoveAll(srv.Dir() + "/data"); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	put(t, c, gkey("web"), group("web", "443", "0.0.0.0/0"), akey("h1"), assign("web"))
	h.wait(t, "from the new store", func(s *Snapshot) bool { return hasPort(s, "web", 443) && s.File.GroupIndex("db") < 0 })
	if st := h.s.Status(); st.Resyncs == 0 {
		t.Fatalf("status %+v: want a full read again", st)
	}
}

// TestSyncReferencedGroupEdits: db references web. An edit of web's own
// rules changes nothing db's hosts enforce (no build); deleting web
// makes the reference undefined: refused, the snapshot in force stays.
func TestSyncReferencedGroupEdits(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	put(t, c, gkey("web"), group("web", "80", "0.0.0.0/0"), gkey("db"), group("db", "5432", "group:web"),
		akey("h1"), assign("db"), akey("h2"), assign("web"), hkey("h2"), hostValue("198.18.0.2"))
	h := startHost(t, c, "h1", func(cfg *SyncConfig) { cfg.Quiet, cfg.MaxWait = time.Nanosecond, time.Nanosecond })
	good := h.wait(t, "with h2 in web", func(s *Snapshot) bool { return slices.Equal(members(s, "db"), []string{"198.18.0.2"}) })
	before := h.waitStatus(t, "settled", func(st SyncStatus) bool { return st.Snapshots == 1 })
	rev := put(t, c, gkey("web"), group("web", "443", "0.0.0.0/0"))
	st := h.waitStatus(t, "at the edit's revision", func(st SyncStatus) bool { return st.Revision >= rev })
	if st.Compiles != before.Compiles || st.Hash != good.Hash() {
		t.Fatalf("an edit of web's rules: status %+v, want no compile and hash %s", st, good.Hash())
	}
	put(t, c, gkey("web"), "")
	st = h.waitStatus(t, "refused", func(st SyncStatus) bool { return st.Refused > 0 })
	if st.Hash != good.Hash() || !strings.Contains(st.Error, "web") {
		t.Fatalf("web deleted: status %+v, want a refusal naming web and hash %s kept", st, good.Hash())
	}
	t.Logf("refused: %s", st.Error)
}
