package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRulesFileNotRegular: validate, check and replay (--diff too) refuse a
// FIFO or a device at the rules path at once, with a message naming it,
// instead of blocking on it or reading it without end; the limit flags
// refuse values below 1. The timeout only detects a hang.
func TestRulesFileNotRegular(t *testing.T) {
	rulesPath, capPath, _ := replayFixture(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // must contain
	}{
		{"validate fifo", []string{"validate", fifo}, exitRejected, "fifo.yaml: is a named pipe (FIFO), not a regular file"},
		{"validate device", []string{"validate", zero}, exitRejected, "zero.yaml: is a character device, not a regular file"},
		{"check fifo", []string{"check", "-f", fifo, "tcp", "198.18.0.7", "443"}, exitRejected, "is a named pipe (FIFO)"},
		{"replay fifo", []string{"replay", "-f", fifo, capPath}, exitRejected, "is a named pipe (FIFO)"},
		{"replay diff fifo", []string{"replay", "-f", rulesPath, "--diff", fifo, capPath}, exitRejected, "is a named pipe (FIFO)"},
		{"replay diff device", []string{"replay", "-f", rulesPath, "--diff", zero, capPath}, exitRejected, "is a character device"},
		{"file over the limit", []string{"validate", "--max-file-bytes", "10", rulesPath}, exitRejected, "over the limit of 10 bytes for a rules file (raise it with --max-file-bytes)"},
		{"negative max-rules", []string{"validate", "--max-rules", "-1", rulesPath}, exitUsage, "fwctl validate: --max-rules -1: want at least 1"},
		{"zero max-file-bytes", []string{"check", "--max-file-bytes", "0", "-f", rulesPath, "tcp", "198.18.0.7", "443"}, exitUsage, "fwctl check: --max-file-bytes 0: want at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type result struct {
				code   int
				stderr string
			}
			ch := make(chan result, 1)
			go func() {
				code, _, errs := fwctl(t, "", tt.args...)
				ch <- result{code, errs}
			}()
			var r result
			select {
			case r = <-ch:
			case <-time.After(30 * time.Second):
				t.Fatalf("fwctl %s hangs", strings.Join(tt.args, " "))
			}
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d, stderr containing %q", r.code, r.stderr, tt.code, tt.stderr)
			}
		})
	}
}
