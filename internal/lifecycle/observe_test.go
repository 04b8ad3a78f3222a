package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestObserveReloads: every reload, the first load included, reaches
// Observe with its result and the live hash after it.
func TestObserveReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var got []ReloadEvent
	svc := NewService(ServiceConfig{Path: path, Target: &holder{}, Observe: func(ev ReloadEvent) { got = append(got, ev) }})
	ctx := context.Background()
	good := baseRules + "      - {proto: udp, ports: 53, from: [any]}\n"
	steps := []struct {
		body  string
		first bool
		want  string
	}{
		{baseRules, true, ReloadOK},
		{baseRules, false, ReloadUnchanged},
		{baseRules + "      - {proto: tcp, ports: 70000, from: [any]}\n", false, ReloadFailed},
		{good, false, ReloadOK},
	}
	for i, st := range steps {
		write(st.body)
		svc.Reload(ctx)
		if len(got) != i+1 {
			t.Fatalf("step %d: %d events, want %d", i, len(got), i+1)
		}
		ev := got[i]
		live := svc.Table().File().Hash
		if ev.Result != st.want || ev.First != st.first || ev.Hash != live || ev.Start.IsZero() || ev.Duration <= 0 {
			t.Errorf("step %d: %+v, want result %s first %v hash %.12s", i, ev, st.want, st.first, live)
		}
		if (ev.Err != "") != (st.want == ReloadFailed) {
			t.Errorf("step %d: err %q with result %s", i, ev.Err, ev.Result)
		}
	}
}
