package lifecycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

func newHistory(t *testing.T, cfg HistoryConfig) *History {
	t.Helper()
	h, err := OpenHistory(filepath.Join(t.TempDir(), "rules.yaml"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func version(i int) []byte { return fmt.Appendf(nil, "version: 1\n# %d\n", i) }

func TestHistoryAppendAndBounds(t *testing.T) {
	tests := []struct {
		name      string
		cfg       HistoryConfig
		appends   int
		wantFirst int // the oldest entry kept
		wantLen   int
	}{
		{"under the bounds", HistoryConfig{MaxEntries: 10}, 4, 1, 4},
		{"by count", HistoryConfig{MaxEntries: 3}, 7, 5, 3},
		{"by bytes", HistoryConfig{MaxEntries: 100, MaxBytes: 600}, 10, 0, 0}, // checked below
		{"newest kept over the byte bound", HistoryConfig{MaxEntries: 100, MaxBytes: 1}, 3, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory(t, tt.cfg)
			for i := 1; i <= tt.appends; i++ {
				v := version(i)
				e, err := h.Append(HistoryEntry{Action: ActionEdit, OK: true, After: rules.Hash(v)}, v)
				if err != nil {
					t.Fatal(err)
				}
				if e.N != i || !e.Saved {
					t.Fatalf("append %d: got n=%d saved=%v", i, e.N, e.Saved)
				}
			}
			es, err := h.Entries()
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantLen == 0 { // by bytes: the bound holds and the newest is there
				if len(es) == 0 || len(es) == tt.appends || es[len(es)-1].N != tt.appends {
					t.Fatalf("kept %d of %d entries, want some pruned and the newest kept", len(es), tt.appends)
				}
				if n := dirBytes(t, h.Dir()); n > tt.cfg.MaxBytes {
					t.Fatalf("history holds %d bytes, bound %d", n, tt.cfg.MaxBytes)
				}
			} else if len(es) != tt.wantLen || es[0].N != tt.wantFirst {
				t.Fatalf("kept %d entries from %d, want %d from %d", len(es), firstN(es), tt.wantLen, tt.wantFirst)
			}
			// The versions of pruned entries are gone, those kept are there.
			for _, e := range es {
				if _, err := h.Version(e.After); err != nil {
					t.Errorf("entry %d: %v", e.N, err)
				}
			}
			if _, err := h.Version(rules.Hash(version(1))); err == nil && es[0].N > 1 {
				t.Error("version of a pruned entry kept")
			}
		})
	}
}

func firstN(es []HistoryEntry) int {
	if len(es) == 0 {
		return 0
	}
	return es[0].N
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, de := range ents {
		fi, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// A crash in the middle of an append leaves a torn last line: reading
// skips it, and the next append cuts it off and goes on numbering.
func TestHistoryTornLine(t *testing.T) {
	h := newHistory(t, HistoryConfig{})
	for i := 1; i <= 2; i++ {
		if _, err := h.Append(HistoryEntry{Action: ActionReload, OK: true}, nil); err != nil {
			t.Fatal(err)
		}
	}
	j := filepath.Join(h.Dir(), journalName)
	f, err := os.OpenFile(j, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"n":3,"time":"2026-01-01T00:00:00Z","act`)
	f.Close()
	es, err := h.Entries()
	if err != nil || len(es) != 2 {
		t.Fatalf("entries with a torn line: %d, %v; want 2", len(es), err)
	}
	e, err := h.Append(HistoryEntry{Action: ActionEdit, OK: true}, nil)
	if err != nil || e.N != 3 {
		t.Fatalf("append after a torn line: n=%d, %v; want 3", e.N, err)
	}
	data, _ := os.ReadFile(j)
	if strings.Contains(string(data), `"act`+"{") || strings.Count(string(data), "\n") != 3 {
		t.Fatalf("journal after the repair:\n%s", data)
	}
	es, _ = h.Entries()
	if len(es) != 3 || es[2].Action != ActionEdit {
		t.Fatalf("entries after the repair: %+v", es)
	}
}

// Every change through the Service is journaled with its peer, hashes
// and diff; rollback restores an earlier entry's rules through the edit
// path and is journaled too.
func TestServiceHistoryRollback(t *testing.T) {
	fx := newFixture(t, baseRules)
	h, err := OpenHistory(fx.path, HistoryConfig{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	fx.h.p.Store(nil)
	fx.svc = NewService(ServiceConfig{Path: fx.path, Target: fx.h, History: h})
	ctx := WithPeer(context.Background(), Peer{UID: 0, PID: 42, Command: "fwctl allow 22/tcp"})
	if _, err := fx.svc.Reload(context.Background()); err != nil { // the start
		t.Fatal(err)
	}
	first := fx.h.Table().File().Hash
	if _, err := fx.svc.Add(ctx, AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"22"}}}}, false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fx.path, []byte(baseRules+"  - bad\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.svc.Reload(context.Background()); err == nil {
		t.Fatal("reload of a bad file went through")
	}
	es, err := fx.svc.History()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		action string
		ok     bool
	}{{ActionStart, true}, {ActionEdit, true}, {ActionReload, false}}
	if len(es) != len(want) {
		t.Fatalf("history: %+v", es)
	}
	for i, w := range want {
		if es[i].Action != w.action || es[i].OK != w.ok {
			t.Errorf("entry %d: %s ok=%v, want %s ok=%v", i+1, es[i].Action, es[i].OK, w.action, w.ok)
		}
	}
	edit := es[1]
	if edit.Peer == nil || edit.Peer.PID != 42 || edit.Peer.Command != "fwctl allow 22/tcp" {
		t.Errorf("edit's peer: %+v", edit.Peer)
	}
	if edit.Before != first || edit.After == first || !strings.Contains(edit.Diff, "+") || !strings.Contains(edit.Diff, "22") {
		t.Errorf("edit entry: before %.12s after %.12s diff\n%s", edit.Before, edit.After, edit.Diff)
	}
	if es[2].After != es[2].Before || es[2].Attempted == "" || es[2].Error == "" {
		t.Errorf("failed reload entry: %+v", es[2])
	}
	if !accepts(fx.h.Table(), ipproto.TCP, 22) {
		t.Fatal("the edit is not live")
	}

	// The file on disk is broken: rollback to the start fixes both.
	res, err := fx.svc.Rollback(ctx, 1, false)
	if err != nil || !res.Changed {
		t.Fatalf("rollback 1: %+v, %v", res, err)
	}
	if accepts(fx.h.Table(), ipproto.TCP, 22) || fx.h.Table().File().Hash != first {
		t.Fatal("rollback 1 did not restore the first rules")
	}
	if data, _ := os.ReadFile(fx.path); rules.Hash(data) != first {
		t.Fatal("rollback 1 did not restore the rules file")
	}
	es, _ = fx.svc.History()
	last := es[len(es)-1]
	if last.Action != ActionRollback || !last.OK || last.Rollback != 1 || last.After != first || last.Peer == nil {
		t.Fatalf("rollback entry: %+v", last)
	}

	// Unknown entries and a rollback to the rules in force are answered.
	if _, err := fx.svc.Rollback(ctx, 99, false); !isCode(err, CodeNotFound) {
		t.Errorf("rollback 99: %v, want not_found", err)
	}
	res, err = fx.svc.Rollback(ctx, 1, false)
	if err != nil || res.Changed {
		t.Errorf("rollback to the live rules: %+v, %v; want no change", res, err)
	}
}

func isCode(err error, c Code) bool {
	e, ok := err.(*Error)
	return ok && e.Code == c
}
