package engine

import (
	"errors"
	"testing"

	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// abandonQueue is a fakeQueue that records an Abandon.
type abandonQueue struct {
	fakeQueue
	abandoned bool
}

func (q *abandonQueue) Abandon() error { q.abandoned = true; return nil }

// TestReplace: Replace abandons the old queue before it opens the new
// one, serves the new one with a new worker answering from the live
// table, keeps the old counts in Stats, and leaves no queue when the
// reopen fails.
func TestReplace(t *testing.T) {
	e, _ := mustEngine(t, webRules, nil)
	old := &abandonQueue{}
	other := &fakeQueue{}
	if err := e.Start([]nfq.Queue{old, other}); err != nil {
		t.Fatal(err)
	}
	http := pkt(t, "tcp", "198.19.7.7", "198.18.0.1", 80)
	old.h(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: http})
	oldHandler := old.h

	next := &fakeQueue{}
	err := e.Replace(0, func() (nfq.Queue, error) {
		if !old.abandoned {
			t.Error("the new queue was opened before the old one was let go of")
		}
		return next, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next.h == nil || next.h(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: http}) != verdict.Accept {
		t.Fatal("the new queue does not answer from the live table")
	}
	// The old worker stays usable by a reader that comes unstuck, and
	// is not the new one.
	oldHandler(&nfq.Msg{Hook: nfq.HookLocalIn, Payload: http})
	if qs := e.Queues(); qs[0] != next || qs[1] != other {
		t.Errorf("queues %v after Replace", qs)
	}
	s := e.Stats()
	if s.Accepted != 3 || s.Queue.Received != 3*7 || s.Workers != 2 {
		t.Errorf("stats %+v: want 3 accepted (old worker twice, new once), the old queue's count kept", s)
	}

	if err := e.Replace(1, func() (nfq.Queue, error) { return nil, errors.New("EBUSY") }); err == nil {
		t.Fatal("Replace with a failing open succeeded")
	}
	if e.Queues()[1] == nfq.Queue(other) {
		t.Error("the old queue is still served after a failed Replace")
	}
}
