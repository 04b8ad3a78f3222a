package flowlog

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/flowlog/flowlogtest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

func TestLimiter(t *testing.T) {
	l := limiter{rate: 2}
	for i, tc := range []struct {
		sec  int64
		want bool
	}{
		{100, true}, {100, true}, {100, false}, {100, false},
		{99, false}, // late: counts against second 100
		{101, true}, {101, true}, {101, false},
		{105, true},
	} {
		if got := l.allow(tc.sec); got != tc.want {
			t.Errorf("record %d (second %d): allow %v, want %v", i, tc.sec, got, tc.want)
		}
	}
}

// readLog parses every line of path with the AWS reader.
func readLog(t *testing.T, path string) []flowlogtest.Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := flowlogtest.ParseAll(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return lines
}

func count(lines []flowlogtest.Line) (ok, skipLines int, skipped int64) {
	for _, l := range lines {
		switch l.Status {
		case "OK":
			ok++
		case "SKIPDATA":
			skipLines++
			skipped += l.Packets
		}
	}
	return
}

// TestRateLimitWritesSkipData: over the rate, records are counted and
// the count is written as a SKIPDATA line.
func TestRateLimitWritesSkipData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flows.log")
	l, err := Open(Config{Path: path, Rate: 3, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r := rec(false, ipproto.TCP, "198.18.0.2", 40000, "198.18.0.1", 22, 60)
	for range 10 { // one second: 3 written, 7 skipped
		l.Log(r)
	}
	r.Time = r.Time.Add(time.Second)
	for range 2 { // the next second: both written
		l.Log(r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Written != 5 || st.Skipped != 7 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 5 written, 7 skipped, 0 dropped", st)
	}
	ok, skipLines, skipped := count(readLog(t, path))
	if ok != 5 || skipLines != 1 || skipped != 7 {
		t.Errorf("file has %d flow lines and %d SKIPDATA lines counting %d, want 5, 1 and 7", ok, skipLines, skipped)
	}
}

// TestFullBufferDrops: with the writer stalled, Log neither blocks nor
// waits; what does not fit is dropped, counted, and reported in a
// SKIPDATA line once the writer runs.
func TestFullBufferDrops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flows.log")
	l, err := newLogger(Config{Path: path, Buffer: 8, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r := rec(true, ipproto.UDP, "198.18.0.2", 40000, "198.18.0.1", 53, 40)
	for range 20 {
		l.Log(r) // returns: the test would hang otherwise
	}
	if st := l.Stats(); st.Dropped != 12 || st.Written != 0 {
		t.Fatalf("stats %+v with a stalled writer, want 12 dropped", st)
	}
	go l.run()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ok, skipLines, skipped := count(readLog(t, path))
	if ok != 8 || skipLines != 1 || skipped != 12 {
		t.Errorf("file has %d flow lines and %d SKIPDATA lines counting %d, want 8, 1 and 12", ok, skipLines, skipped)
	}
}

// TestFlushOnTicker: lines reach the file without a Close.
func TestFlushOnTicker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flows.log")
	l, err := Open(Config{Path: path, FlushEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Log(rec(true, ipproto.TCP, "198.18.0.2", 40000, "198.18.0.1", 80, 60))
	for {
		if b, _ := os.ReadFile(path); len(b) > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond) // until it comes; the test's timeout bounds it
	}
	if lines := readLog(t, path); len(lines) != 1 || lines[0].DstPort != 80 {
		t.Errorf("flushed %+v, want the one line", lines)
	}
}
