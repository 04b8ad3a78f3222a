package e2e

import (
	"strings"
	"testing"
	"time"
)

// The soak's judges, without root: what the timeline of the toggled rule
// allows, and what counts as flat.

// TestSoakTimeline: the rule is off until 10 s, being switched on until
// 11 s, on until 20 s, being switched off until 21 s, then off; a reload
// at 30-31 s leaves it off.
func TestSoakTimeline(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	tl := &soakTimeline{initial: false, changes: []soakChange{
		{start: at(10), ack: at(11), before: false, after: true},
		{start: at(20), ack: at(21), before: true, after: false},
		{start: at(30), ack: at(31), before: false, after: false},
	}}
	for _, tc := range []struct {
		a, b     float64
		live, no bool // could the rule have been live / absent in [a, b]
	}{
		{a: 1, b: 2, live: false, no: true},       // before any change
		{a: 9.5, b: 9.9, live: false, no: true},   // just before the first change
		{a: 9.5, b: 10, live: true, no: true},     // reaches the first change's start
		{a: 10.5, b: 10.6, live: true, no: true},  // being switched on
		{a: 11.5, b: 19.9, live: true, no: false}, // on, acknowledged
		{a: 19.9, b: 20.1, live: true, no: true},  // being switched off
		{a: 21, b: 21.1, live: true, no: true},    // at the ack: either
		{a: 21.1, b: 29, live: false, no: true},   // off
		{a: 30, b: 31, live: false, no: true},     // a change that keeps it off
		{a: 40, b: 50, live: false, no: true},     // after the last change
		{a: 5, b: 40, live: true, no: true},       // spans it all
	} {
		if got := tl.could(true, at(tc.a), at(tc.b)); got != tc.live {
			t.Errorf("could be live in [%v, %v] = %v, want %v", tc.a, tc.b, got, tc.live)
		}
		if got := tl.could(false, at(tc.a), at(tc.b)); got != tc.no {
			t.Errorf("could be absent in [%v, %v] = %v, want %v", tc.a, tc.b, got, tc.no)
		}
	}
}

// TestSoakFlat: samples over 60 s, the warm-up being the first 20 s.
func TestSoakFlat(t *testing.T) {
	const d = 60 * time.Second
	smp := func(s int, rss, g, fds uint64) soakSample {
		return soakSample{at: time.Duration(s) * time.Second, rssKiB: rss, goroutines: g, fds: fds}
	}
	for _, tc := range []struct {
		name    string
		samples []soakSample
		want    string // a substring of the one complaint; "" for none
	}{
		{"flat", []soakSample{smp(0, 20000, 8, 12), smp(10, 40000, 9, 14), smp(30, 41000, 10, 15), smp(50, 40000, 8, 12)}, ""},
		{"rss within 1.5x + 8 MiB", []soakSample{smp(0, 20000, 8, 12), smp(30, 38192, 8, 12), smp(50, 38192, 8, 12)}, ""},
		{"rss grows", []soakSample{smp(0, 20000, 8, 12), smp(30, 30000, 8, 12), smp(50, 38193, 8, 12)}, "RSS reached 38193 kB"},
		{"goroutines leak", []soakSample{smp(0, 20000, 8, 12), smp(30, 20000, 12, 12), smp(50, 20000, 17, 12)}, "goroutines reached 17"},
		{"descriptors leak", []soakSample{smp(0, 20000, 8, 12), smp(30, 20000, 8, 20), smp(50, 20000, 8, 21)}, "descriptors reached 21"},
		{"too few samples", []soakSample{smp(0, 20000, 8, 12), smp(30, 20000, 8, 12)}, "want at least 1 and 2"},
		{"no warm-up", []soakSample{smp(30, 20000, 8, 12), smp(50, 20000, 8, 12)}, "want at least 1 and 2"},
	} {
		got := soakFlat(tc.samples, d)
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s: %q, want flat", tc.name, got)
		case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
			t.Errorf("%s: %q, want one complaint with %q", tc.name, got, tc.want)
		}
	}
}

// TestSoakFlatShort: in make test's 20 s soak the warm-up is 12 s, not
// a third: a -race build's heap climbs for 10-15 s before its plateau.
func TestSoakFlatShort(t *testing.T) {
	const d = 20 * time.Second
	smp := func(s int, rss uint64) soakSample {
		return soakSample{at: time.Duration(s) * time.Second, rssKiB: rss, goroutines: 12, fds: 13}
	}
	climb := []soakSample{smp(0, 69000), smp(4, 92000), smp(8, 104000), smp(11, 150000), smp(14, 151000), smp(18, 152000), smp(20, 152300)}
	if got := soakFlat(climb, d); len(got) != 0 {
		t.Errorf("a climb inside the first 12 s: %q, want flat", got)
	}
	leak := []soakSample{smp(0, 69000), smp(4, 92000), smp(11, 100000), smp(14, 150000), smp(18, 170000), smp(20, 190000)}
	if got := soakFlat(leak, d); len(got) != 1 || !strings.Contains(got[0], "RSS reached 190000 kB") {
		t.Errorf("growth after 12 s: %q, want the RSS complaint", got)
	}
}
