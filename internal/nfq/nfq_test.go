package nfq

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestParseKernelStats(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []KernelStats
		wantErr bool
	}{
		{name: "empty", in: ""},
		{
			name: "two queues",
			in: "    0  12345     0 2   128     0     0       42  1\n" +
				"    1 -4100     3 2   128     7     9 4294967295  1\n",
			wantErr: true, // a negative port id is not a number we accept
		},
		{
			name: "two queues",
			in: "    0  12345     0 2   128     0     0       42  1\n" +
				"    1  4100     3 2   128     7     9 4294967295  1\n",
			want: []KernelStats{
				{Num: 0, PortID: 12345, CopyMode: 2, CopyRange: 128, IDSequence: 42},
				{Num: 1, PortID: 4100, Waiting: 3, CopyMode: 2, CopyRange: 128, QueueDropped: 7, UserDropped: 9, IDSequence: 4294967295},
			},
		},
		{name: "short line", in: "0 1 2 3\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKernelStats(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d lines, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("line %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	l := limiter{every: time.Second}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true},
		{time.Millisecond, false},
		{999 * time.Millisecond, false},
		{time.Second, true},
		{1500 * time.Millisecond, false},
		{5 * time.Second, true},
	}
	for _, s := range steps {
		if got := l.allow(t0.Add(s.at)); got != s.want {
			t.Errorf("allow at +%v = %v, want %v", s.at, got, s.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Num: 3}.withDefaults()
	if c.CopyRange != DefaultCopyRange || c.MaxQueueLen != DefaultMaxQueueLen || c.ReadBuffer != DefaultReadBuffer || c.Log == nil {
		t.Errorf("defaults not applied: %+v", c)
	}
	c = Config{CopyRange: 64, MaxQueueLen: 10, ReadBuffer: 1 << 10}.withDefaults()
	if c.CopyRange != 64 || c.MaxQueueLen != 10 || c.ReadBuffer != 1<<10 {
		t.Errorf("explicit values overridden: %+v", c)
	}
}

func TestSumKernelStats(t *testing.T) {
	ks := []KernelStats{
		{Num: 0, Waiting: 1, QueueDropped: 2, UserDropped: 3, IDSequence: 4},
		{Num: 1, Waiting: 10, QueueDropped: 20, UserDropped: 30, IDSequence: 40},
		{Num: 2, Waiting: 100, QueueDropped: 200, UserDropped: 300, IDSequence: 400},
	}
	got := SumKernelStats(ks, 1, 2)
	want := KernelStats{Waiting: 110, QueueDropped: 220, UserDropped: 330, IDSequence: 440}
	if got != want {
		t.Errorf("SumKernelStats(1, 2) = %+v, want %+v", got, want)
	}
	if got := SumKernelStats(ks, 3, 1); got != (KernelStats{}) {
		t.Errorf("queue outside the range counted: %+v", got)
	}
}
