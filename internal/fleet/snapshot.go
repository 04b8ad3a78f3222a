package fleet

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
)

// SnapshotFile is the name of the last good snapshot in the state
// directory.
const SnapshotFile = "fleet-snapshot.json"

// savedSnapshot is a snapshot on disk: everything it was resolved from,
// so that loading it runs the same Resolve as the syncer and proves the
// result by its hash.
type savedSnapshot struct {
	Version  int                       `json:"version"`
	Revision int64                     `json:"revision"`
	Host     string                    `json:"host"`
	Groups   []string                  `json:"groups"`
	Policy   savedPolicy               `json:"policy"`
	Members  map[string][]netip.Prefix `json:"members"`
	Hash     string                    `json:"hash"`
	Saved    time.Time                 `json:"saved"`
}

type savedPolicy struct {
	Groups      map[string]string `json:"groups"`
	PrefixLists map[string]string `json:"prefix_lists"`
}

// Save writes s to path atomically (a crash leaves the old file or the
// new one).
func (s *Snapshot) Save(path string, now time.Time) error {
	v := savedSnapshot{Version: 1, Revision: s.Revision, Host: s.Host, Groups: s.Groups,
		Policy:  savedPolicy{Groups: strMap(s.Policy.Groups), PrefixLists: strMap(s.Policy.PrefixLists)},
		Members: s.Members, Hash: s.Hash(), Saved: now.UTC()}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("fleet snapshot: %w", err)
	}
	return rules.WriteFileAtomic(path, append(data, '\n'))
}

// LoadSnapshot reads the snapshot saved at path, resolves and compiles it
// again and checks that it means what was saved (its hash). The error
// wraps fs.ErrNotExist when there is none.
func LoadSnapshot(path string, opts rules.Options) (*Snapshot, time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	var v savedSnapshot
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	if v.Version != 1 {
		return nil, time.Time{}, fmt.Errorf("%s: version %d: expected 1", path, v.Version)
	}
	p := Policy{Groups: byteMap(v.Policy.Groups), PrefixLists: byteMap(v.Policy.PrefixLists)}
	f, err := Resolve(p, v.Groups, v.Members, opts)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	if f.Hash != v.Hash {
		return nil, time.Time{}, fmt.Errorf("%s: resolves to hash %s, saved as %s: refused", path, f.Hash, v.Hash)
	}
	t, err := filter.Compile(f)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	return &Snapshot{Revision: v.Revision, Host: v.Host, Groups: v.Groups, Policy: p,
		Members: v.Members, File: f, Table: t}, v.Saved, nil
}

func strMap(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out[k] = string(m[k])
	}
	return out
}

func byteMap(m map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}
