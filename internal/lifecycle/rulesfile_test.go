package lifecycle

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadRefusesNotRegular: with a FIFO, a device, a directory or a file
// over the size limit at the rules path, a reload and an edit fail at once
// with read_failed naming what is there, the live table stays, and the
// service is not wedged: a good file reloads after. The timeout only
// detects a hang.
func TestReloadRefusesNotRegular(t *testing.T) {
	tests := []struct {
		name  string
		put   func(path string) error
		limit int64
		want  string
	}{
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, 0, "is a named pipe (FIFO), not a regular file"},
		{"device", func(p string) error { return os.Symlink("/dev/zero", p) }, 0, "is a character device, not a regular file"},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }, 0, "is a directory, not a regular file"},
		{"over the limit", func(p string) error { return os.WriteFile(p, []byte(baseRules+"# padding\n"), 0o600) }, int64(len(baseRules)), "over the limit of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, baseRules)
			fx.svc.cfg.Rules.MaxFileBytes = tt.limit
			old := fx.h.Table()
			if err := os.Remove(fx.path); err != nil {
				t.Fatal(err)
			}
			if err := tt.put(fx.path); err != nil {
				t.Fatal(err)
			}
			ops := map[string]func() error{
				"reload": func() error { _, err := fx.svc.Reload(context.Background()); return err },
				"add": func() error {
					_, err := fx.svc.Add(context.Background(), AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"22"}}}}, false)
					return err
				},
			}
			for name, op := range ops {
				done := make(chan error, 1)
				go func() { done <- op() }()
				var err error
				select {
				case err = <-done:
				case <-time.After(30 * time.Second):
					t.Fatalf("%s hangs", name)
				}
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeReadFailed || !strings.Contains(e.Message, tt.want) {
					t.Errorf("%s: err = %v; want read_failed containing %q", name, err, tt.want)
				}
			}
			if fx.h.Table() != old || fx.h.swaps.Load() != 0 {
				t.Error("the live table changed")
			}
			if err := os.RemoveAll(fx.path); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fx.path, []byte(baseRules+"      - {proto: udp, ports: 53, from: [any]}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			fx.svc.cfg.Rules.MaxFileBytes = 0
			if res, err := fx.svc.Reload(context.Background()); err != nil || !res.Changed {
				t.Errorf("reload of a good file after: %+v, %v", res, err)
			}
		})
	}
}
