package lifecycle

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/types/ipproto"
)

func TestConfirmRollsBack(t *testing.T) {
	fx := newSafeFixture(t, sshOpen, Safety{})
	before := fx.h.Table()
	ctx := WithChange(context.Background(), &Change{Confirm: time.Minute})
	res, err := fx.svc.Apply(ctx, []byte(sshOther), false)
	if err != nil || res.Confirm == nil || !res.Confirm.Deadline.Equal(fx.now.Add(time.Minute)) {
		t.Fatalf("apply --confirm 1m: %+v, %v", res, err)
	}
	if fx.file(t) != sshOther || accepts(fx.h.Table(), ipproto.TCP, 22) {
		t.Fatal("the change is not live")
	}
	if _, err := os.Stat(RollbackPath(fx.path)); err != nil {
		t.Fatalf("no rollback record: %v", err)
	}
	// A second change during the window is refused; a dry run answered.
	if _, err := fx.svc.Add(context.Background(), AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"8080"}}}}, false); codeOf(err) != CodeConfirmPending {
		t.Fatalf("second change: %v; want confirm_pending", err)
	}
	fx.write(t, sshNone)
	if _, err := fx.svc.Reload(context.Background()); codeOf(err) != CodeConfirmPending {
		t.Fatalf("reload during the window: %v", err)
	}
	fx.write(t, sshOther)
	if _, err := fx.svc.Add(context.Background(), AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"8080"}}}}, true); err != nil {
		t.Fatalf("dry run during the window: %v", err)
	}
	if p := fx.svc.Safety().Pending; p == nil || p.PreviousHash != before.File().Hash {
		t.Fatalf("status: pending %+v", p)
	}
	// Not yet: nothing happens.
	fx.advance(59 * time.Second)
	if fx.file(t) != sshOther {
		t.Fatal("rolled back before the deadline")
	}
	fx.advance(time.Second)
	if fx.file(t) != sshOpen || !accepts(fx.h.Table(), ipproto.TCP, 22) {
		t.Fatalf("not rolled back at the deadline: file %q", fx.file(t))
	}
	if _, err := os.Stat(RollbackPath(fx.path)); !os.IsNotExist(err) {
		t.Fatalf("rollback record left: %v", err)
	}
	st := fx.svc.Safety()
	if st.RolledBack != 1 || st.Pending != nil {
		t.Fatalf("status after the rollback: %+v", st)
	}
	// Changes are taken again.
	if _, err := fx.svc.Add(context.Background(), AddRequest{Rules: []RuleSpec{{Proto: "tcp", Ports: []string{"8080"}}}}, false); err != nil {
		t.Fatalf("change after the rollback: %v", err)
	}
}

func TestConfirmKeeps(t *testing.T) {
	fx := newSafeFixture(t, sshOpen, Safety{})
	ctx := WithChange(context.Background(), &Change{Confirm: time.Minute})
	res, err := fx.svc.Delete(ctx, DeleteRequest{Numbers: []int{1}}, false)
	if err != nil || res.Confirm == nil || !strings.Contains(strings.Join(res.Notes, "\n"), "fwctl confirm") {
		t.Fatalf("delete --confirm: %+v, %v", res, err)
	}
	after := fx.file(t)
	fx.advance(30 * time.Second)
	if _, err := fx.svc.Confirm(context.Background()); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	fx.advance(time.Hour)
	if fx.file(t) != after || accepts(fx.h.Table(), ipproto.TCP, 22) {
		t.Fatal("a confirmed change was rolled back")
	}
	if _, err := os.Stat(RollbackPath(fx.path)); !os.IsNotExist(err) {
		t.Fatalf("rollback record left after confirm: %v", err)
	}
	if _, err := fx.svc.Confirm(context.Background()); codeOf(err) != CodeNotFound {
		t.Fatalf("confirm with nothing pending: %v", err)
	}
	if st := fx.svc.Safety(); st.Confirmed != 1 || st.RolledBack != 0 {
		t.Fatalf("status: %+v", st)
	}
}

// A restart within the window resumes the timer; after it, the
// previous rules are written back before the first load.
func TestConfirmAcrossRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		down     time.Duration // how long fwd was stopped
		wantFile string        // right after the restart's first load
	}{
		{"within the window", 20 * time.Second, sshOther},
		{"past the deadline", 2 * time.Minute, sshOpen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newSafeFixture(t, sshOpen, Safety{})
			if _, err := fx.svc.Apply(WithChange(context.Background(), &Change{Confirm: time.Minute}), []byte(sshOther), false); err != nil {
				t.Fatal(err)
			}
			// fwd stops (its timer with it) and starts again later.
			fx2 := &safeFixture{now: fx.now.Add(tc.down), path: fx.path, h: &holder{}}
			fx2.svc = NewService(ServiceConfig{Path: fx.path, Target: fx2.h, Now: func() time.Time { return fx2.now },
				Safety: Safety{SSHPorts: func() []uint16 { return nil }, AfterFunc: func(d time.Duration, f func()) func() bool {
					stopped := new(bool)
					fx2.timers = append(fx2.timers, fakeTimer{at: fx2.now.Add(d), f: f, stopped: stopped})
					return func() bool { *stopped = true; return true }
				}}})
			if err := fx2.svc.Resume(); err != nil {
				t.Fatal(err)
			}
			if _, err := fx2.svc.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			if fx2.file(t) != tc.wantFile {
				t.Fatalf("after the restart the file is %q", fx2.file(t))
			}
			fx2.advance(time.Minute)
			if fx2.file(t) != sshOpen || !accepts(fx2.h.Table(), ipproto.TCP, 22) {
				t.Fatal("the unconfirmed change outlived its deadline")
			}
			if st := fx2.svc.Safety(); st.RolledBack != 1 {
				t.Fatalf("status: %+v", st)
			}
		})
	}
	// A record for rules that are no longer the file's is stale.
	fx := newSafeFixture(t, sshOpen, Safety{})
	fx.svc.Apply(WithChange(context.Background(), &Change{Confirm: time.Minute}), []byte(sshOther), false)
	fx.write(t, sshNone)
	svc := NewService(ServiceConfig{Path: fx.path, Target: &holder{}, Now: func() time.Time { return fx.now.Add(time.Hour) }})
	if err := svc.Resume(); err != nil {
		t.Fatal(err)
	}
	if fx.file(t) != sshNone {
		t.Fatal("a stale record rolled back a file edited by hand")
	}
	if _, err := os.Stat(RollbackPath(fx.path)); !os.IsNotExist(err) {
		t.Fatalf("stale record left: %v", err)
	}
}

// TestRollbackPendingNow: the admin who sees a confirmed change go wrong
// need not wait for its deadline; a dry run changes nothing, the real one
// restores file and table and ends the window.
func TestRollbackPendingNow(t *testing.T) {
	fx := newSafeFixture(t, sshOpen, Safety{})
	if _, err := fx.svc.RollbackPending(context.Background(), false); codeOf(err) != CodeNotFound {
		t.Fatalf("with nothing pending: %v; want not_found", err)
	}
	ctx := WithChange(context.Background(), &Change{Confirm: time.Hour})
	if _, err := fx.svc.Apply(ctx, []byte(sshOther), false); err != nil {
		t.Fatal(err)
	}
	dry, err := fx.svc.RollbackPending(context.Background(), true)
	if err != nil || !dry.DryRun || dry.Diff == "" || fx.file(t) != sshOther || fx.svc.Safety().Pending == nil {
		t.Fatalf("dry run: %+v, %v; file %q", dry, err, fx.file(t))
	}
	if _, err := fx.svc.RollbackPending(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if fx.file(t) != sshOpen || !accepts(fx.h.Table(), ipproto.TCP, 22) {
		t.Fatalf("not rolled back: file %q", fx.file(t))
	}
	st := fx.svc.Safety()
	if st.Pending != nil || st.RolledBack != 1 {
		t.Fatalf("status after: %+v", st)
	}
	if _, err := os.Stat(RollbackPath(fx.path)); !os.IsNotExist(err) {
		t.Fatalf("rollback record left: %v", err)
	}
	// The timer that was armed does nothing now.
	fx.advance(2 * time.Hour)
	if fx.file(t) != sshOpen || fx.svc.Safety().RolledBack != 1 {
		t.Fatal("the old timer acted after the rollback")
	}
}
