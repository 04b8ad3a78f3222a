package lifecycle

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
)

// TestChangingAroundEveryChange: the Changing hook brackets every change
// of the live rules (reload, edit, failed edit), and only those: an
// unchanged reload, a dry run and an invalid file change nothing.
func TestChangingAroundEveryChange(t *testing.T) {
	add := AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"22"}}}}
	for _, tc := range []struct {
		name     string
		step     func(fx *fixture) error
		want     string // the hook's calls: b begin, then the live hash at done
		newTable bool   // done saw a new table
	}{
		{"reload changed", func(fx *fixture) error {
			return writeAndReload(fx, baseRules+"      - {proto: udp, ports: 53, from: [any]}\n")
		}, "bd", true},
		{"reload unchanged", func(fx *fixture) error { _, err := fx.svc.Reload(context.Background()); return err }, "", false},
		{"reload invalid", func(fx *fixture) error {
			if err := writeAndReload(fx, "version: 9\n"); err == nil {
				return errors.New("an invalid file reloaded")
			}
			return nil
		}, "", false},
		{"add", func(fx *fixture) error { _, err := fx.svc.Add(context.Background(), add, false); return err }, "bd", true},
		{"add dry run", func(fx *fixture) error { _, err := fx.svc.Add(context.Background(), add, true); return err }, "", false},
		{"add, prepare fails", func(fx *fixture) error {
			fx.svc.cfg.Prepare = func(context.Context, *filter.Table) error { return errors.New("boom") }
			if _, err := fx.svc.Add(context.Background(), add, false); err == nil {
				return errors.New("the add went through")
			}
			return nil
		}, "bd", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, baseRules)
			old := fx.h.Table()
			var calls strings.Builder
			var seen *filter.Table
			fx.svc.cfg.Changing = func() func(*filter.Table) {
				calls.WriteString("b")
				return func(live *filter.Table) { calls.WriteString("d"); seen = live }
			}
			if err := tc.step(fx); err != nil {
				t.Fatal(err)
			}
			if calls.String() != tc.want {
				t.Errorf("hook calls %q, want %q", calls.String(), tc.want)
			}
			if tc.want != "" && (seen != fx.h.Table() || (seen != old) != tc.newTable) {
				t.Errorf("done saw table %p, live %p, old %p; want a new table: %v", seen, fx.h.Table(), old, tc.newTable)
			}
		})
	}
}

func writeAndReload(fx *fixture, content string) error {
	if err := os.WriteFile(fx.path, []byte(content), 0o640); err != nil {
		return err
	}
	_, err := fx.svc.Reload(context.Background())
	return err
}
