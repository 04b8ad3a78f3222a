package flowlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRotation: files never pass the size, lines are never split, at
// most Files files exist, and what is removed is the oldest.
func TestRotation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxSize int64
		files   int
		lines   int
	}{
		{"five files", 100, 5, 60},
		{"two files", 100, 2, 60},
		{"one file", 100, 1, 60},
		{"no rotation needed", 10000, 3, 20},
		{"line longer than the size", 5, 3, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "flows.log")
			r, err := openRotator(path, tc.maxSize, tc.files)
			if err != nil {
				t.Fatal(err)
			}
			var written []string
			for i := range tc.lines {
				line := fmt.Sprintf("line %04d\n", i) // 10 bytes
				written = append(written, line)
				if err := r.writeLine([]byte(line)); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.close(); err != nil {
				t.Fatal(err)
			}
			// Read the files oldest first: they hold the newest lines
			// written, in order, without a gap.
			var got []string
			n := 0
			for i := tc.files; i >= 0; i-- {
				b, err := os.ReadFile(r.name(i))
				if os.IsNotExist(err) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if i >= tc.files {
					t.Errorf("%s exists, want at most %d files", r.name(i), tc.files)
				}
				n++
				if int64(len(b)) > max(tc.maxSize, 10) {
					t.Errorf("%s has %d bytes, over %d", r.name(i), len(b), tc.maxSize)
				}
				if len(b) > 0 && !strings.HasSuffix(string(b), "\n") {
					t.Errorf("%s ends in a split line: %q", r.name(i), b)
				}
				got = append(got, strings.SplitAfter(string(b), "\n")...)
			}
			got = slicesDeleteEmpty(got)
			perFile := int(max(tc.maxSize/10, 1))
			wantKept := min(tc.lines, perFile*tc.files)
			if len(got) < wantKept-perFile+1 || len(got) > wantKept {
				t.Errorf("%d lines kept over %d files, want %d (less at most one file's worth)", len(got), n, wantKept)
			}
			want := written[len(written)-len(got):]
			if strings.Join(got, "") != strings.Join(want, "") {
				t.Errorf("kept lines\n%s\nwant the newest\n%s", strings.Join(got, ""), strings.Join(want, ""))
			}
		})
	}
}

func slicesDeleteEmpty(s []string) []string {
	out := s[:0]
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// TestRotationAppendsToExisting: a restart appends to the current file
// and counts its size.
func TestRotationAppendsToExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flows.log")
	if err := os.WriteFile(path, []byte("old line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := openRotator(path, 20, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"new 1\n", "new 2\n", "new 3\n"} {
		if err := r.writeLine([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "old line\nnew 1\n" || string(cur) != "new 2\nnew 3\n" {
		t.Errorf("after a restart: %s.1 %q, %s %q", path, old, path, cur)
	}
}

func TestOpenRefusesNonRegular(t *testing.T) {
	if _, err := openRotator(t.TempDir(), 100, 2); err == nil {
		t.Error("opened a directory as the flow log")
	}
	if _, err := openRotator(filepath.Join(t.TempDir(), "missing", "flows.log"), 100, 2); err == nil {
		t.Error("opened a file in a missing directory")
	}
}
