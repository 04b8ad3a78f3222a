package rules

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readWithin runs ReadFile and fails the test when it does not return:
// the timeout only detects a hang (a FIFO blocks open and read for good),
// it measures nothing.
func readWithin(t *testing.T, path string, max int64) ([]byte, error) {
	t.Helper()
	type result struct {
		data []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		data, err := ReadFile(path, max)
		ch <- result{data, err}
	}()
	select {
	case r := <-ch:
		return r.data, r.err
	case <-time.After(30 * time.Second):
		t.Fatalf("ReadFile(%s) hangs", path)
		return nil, nil
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	good := []byte("version: 1\ngroups: []\n")
	if err := os.WriteFile(at("rules.yaml"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("rules.yaml", at("link.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(at("fifo.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", at("zero.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(at("dir.yaml"), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", at("sock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.WriteFile(at("big.yaml"), bytes.Repeat([]byte("#"), 1025), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(at("limit.yaml"), bytes.Repeat([]byte("#"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		max     int64
		want    []byte
		wantErr string // a part of the error; "" for none
	}{
		{name: "rules.yaml", want: good},
		{name: "link.yaml", want: good},
		{name: "fifo.yaml", wantErr: "fifo.yaml: is a named pipe (FIFO), not a regular file"},
		{name: "zero.yaml", wantErr: "zero.yaml: is a character device, not a regular file"},
		{name: "dir.yaml", wantErr: "dir.yaml: is a directory, not a regular file"},
		{name: "sock.yaml", wantErr: "sock.yaml: is a socket, not a regular file"},
		{name: "big.yaml", max: 1024, wantErr: "big.yaml: is 1025 bytes, over the limit of 1024 bytes for a rules file (raise it with --max-file-bytes)"},
		{name: "limit.yaml", max: 1024, want: bytes.Repeat([]byte("#"), 1024)},
		{name: "big.yaml", want: bytes.Repeat([]byte("#"), 1025)}, // zero: the default limit
		{name: "missing.yaml", wantErr: "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readWithin(t, at(tt.name), tt.max)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ReadFile: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("ReadFile: error %v; want one containing %q", err, tt.wantErr)
			case !bytes.Equal(got, tt.want):
				t.Fatalf("ReadFile = %.40q; want %.40q", got, tt.want)
			}
		})
	}
}

// TestLoadRefusesFIFO: Load (fwd at start, fwctl validate, check and
// replay) reads through ReadFile and honours Options.MaxFileBytes.
func TestLoadRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "rules.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Load(fifo, Options{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Errorf("Load(fifo) = %v; want a named pipe error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Load hangs on a FIFO")
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("version: 1\ngroups: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big, Options{MaxFileBytes: 10}); err == nil || !strings.Contains(err.Error(), "over the limit of 10 bytes") {
		t.Errorf("Load over MaxFileBytes = %v; want an over the limit error", err)
	}
}

// TestReadFileChangedWhileRead changes the file between the read and the
// second stat, as a writer rewriting it in place would: ReadFile reads
// again and returns the file as it then stands, or, when it changes on
// every try, refuses.
func TestReadFileChangedWhileRead(t *testing.T) {
	a := []byte("version: 1\ngroups:\n  - name: a\n  - name: b\n")
	b := []byte("version: 1\ngroups:\n  - name: a\n")
	c := []byte("version: 1\ngroups:\n  - name: c\n  - name: d\n") // len(c) == len(a)
	tests := []struct {
		name    string
		writes  map[int][]byte // content rewritten in place during try N
		want    []byte
		wantErr string
	}{
		{name: "unchanged", want: a},
		{name: "shorter", writes: map[int][]byte{1: b}, want: b},
		{name: "same size", writes: map[int][]byte{1: c}, want: c},
		{name: "prefix then whole", writes: map[int][]byte{1: b[:10], 2: b}, want: b},
		{name: "always", writes: map[int][]byte{1: b, 2: a, 3: b, 4: a, 5: b}, wantErr: "changed while being read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rules.yaml")
			if err := os.WriteFile(path, a, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readFile(path, 0, func(try int) {
				if data, ok := tt.writes[try]; ok {
					if err := os.WriteFile(path, data, 0o600); err != nil { // truncates in place
						t.Error(err)
					}
				}
			})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("readFile: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("readFile: error %v; want one containing %q", err, tt.wantErr)
			case !bytes.Equal(got, tt.want):
				t.Fatalf("readFile = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestReadFileRacingWriter: a writer rewrites the file in place, as a tool
// that does not write atomically would: truncate, write the first half,
// write the rest, alternating between two versions (all "a", all "b").
// The file only ever holds a prefix of one version: truncating and
// writing are not atomic, and a reader cannot tell a rewrite that stands
// still half-way from a finished one (only an atomic rename avoids that).
// A read that a write overtakes can see what the file never held: the
// start of one version and the rest of the other. ReadFile must return
// only what the file held at one moment, or refuse.
func TestReadFileRacingWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	a := bytes.Repeat([]byte("a"), 1<<20)
	b := bytes.Repeat([]byte("b"), 3<<19)
	if err := os.WriteFile(path, a, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	var reads, refused int
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := ReadFile(path, 0)
				mu.Lock()
				reads++
				switch {
				case err != nil && strings.Contains(err.Error(), "changed while being read"):
					refused++
				case err != nil:
					bad = append(bad, err.Error())
				case bytes.Contains(got, []byte("a")) && bytes.Contains(got, []byte("b")):
					i := max(bytes.IndexByte(got, 'a'), bytes.IndexByte(got, 'b'))
					bad = append(bad, fmt.Sprintf("%d bytes, %q up to byte %d, then %q", len(got), got[0], i, got[i]))
				}
				mu.Unlock()
			}
		})
	}
	for i := range 400 {
		data := a
		if i%2 == 0 {
			data = b
		}
		if err := w.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt(data[:len(data)/2], 0); err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt(data[len(data)/2:], int64(len(data)/2)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	t.Logf("%d reads, %d refused as changing", reads, refused)
	if len(bad) > 0 {
		t.Fatalf("%d of %d reads returned what the file never held, first: %s", len(bad), reads, bad[0])
	}
}
