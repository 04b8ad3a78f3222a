package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/suggest"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// In audit mode every decideCase is accepted; the drops are counted as
// would-drops by reason, logged with would_drop=true and the rule that
// decided, and grouped in the would-drop table.
func TestDecideAudit(t *testing.T) {
	var logBuf bytes.Buffer
	e, _ := mustEngine(t, webRules, slog.New(slog.NewTextHandler(&logBuf, nil)))
	e.SetAudit(true)
	w := e.NewWorker(0)
	e.workers = append(e.workers, w) // AuditStats sums the started workers
	var want AuditStats
	for _, c := range decideCases(t) {
		t.Run(c.name, func(t *testing.T) {
			logBuf.Reset()
			if got := w.Decide(&nfq.Msg{ID: 1, Hook: c.hook, Payload: c.data}); got != verdict.Accept {
				t.Fatalf("verdict %v in audit mode, want accept", got)
			}
			if c.want == verdict.Accept {
				return
			}
			switch c.reason {
			case ReasonNoMatch:
				want.NoMatch++
			case ReasonUndecodable:
				want.Undecodable++
			}
			line := logBuf.String()
			if !strings.Contains(line, "would_drop=true") || !strings.Contains(line, "reason="+c.reason) {
				t.Errorf("audit log %q lacks would_drop=true reason=%s", line, c.reason)
			}
		})
	}
	if got := e.AuditStats(); got != want {
		t.Errorf("audit stats %+v, want %+v", got, want)
	}
	if w.noMatch.Load()+w.aclDeny.Load()+w.undecodable.Load() != 0 {
		t.Error("would-drops counted as drops")
	}
	got := suggest.Format(suggest.Aggregate(e.WouldDrops().Entries(), suggest.Options{}))
	for _, s := range []string{
		"fwctl allow from 198.18.0.0/24 to any port 22 proto tcp ",
		"fwctl allow out to 198.18.1.0/24 port 9000 proto tcp ",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("suggestions lack %q:\n%s", s, got)
		}
	}

	// Out of audit mode the same flow is dropped again.
	e.SetAudit(false)
	if v := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.18.0.3", "198.18.0.1", 22)}); v != verdict.Drop {
		t.Fatalf("after audit: %v, want drop", v)
	}
}

// An ACL entry's would-drop names the entry.
func TestDecideAuditACL(t *testing.T) {
	var logBuf bytes.Buffer
	e, _ := mustEngine(t, aclRules, slog.New(slog.NewTextHandler(&logBuf, nil)))
	e.SetAudit(true)
	w := e.NewWorker(0)
	if v := w.Decide(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: pkt(t, "tcp", "198.19.9.9", "198.18.0.1", 80)}); v != verdict.Accept {
		t.Fatalf("acl-denied flow in audit mode: %v", v)
	}
	if w.aud.acl.Load() != 1 || w.aclDeny.Load() != 0 {
		t.Errorf("would-drop acl %d, acl deny %d; want 1, 0", w.aud.acl.Load(), w.aclDeny.Load())
	}
	if line := logBuf.String(); !strings.Contains(line, "reason=acl-deny") || !strings.Contains(line, "100") {
		t.Errorf("acl would-drop line does not name the entry: %s", line)
	}
}

// The audit path allocates nothing either (once the log's burst is used).
func TestDecideAuditAllocs(t *testing.T) {
	e, _ := mustEngine(t, aclRules, slog.New(slog.DiscardHandler))
	e.SetAudit(true)
	w := e.NewWorker(0)
	fixed := time.Unix(1000, 0)
	w.now = func() time.Time { return fixed }
	for _, c := range decideCases(t) {
		m := &nfq.Msg{ID: 1, Hook: c.hook, Payload: c.data}
		for range 2 * e.cfg.DropLogBurst {
			w.Decide(m)
		}
		if n := testing.AllocsPerRun(200, func() { w.Decide(m) }); n != 0 {
			t.Errorf("%s: %v allocations per Decide in audit mode", c.name, n)
		}
	}
}
