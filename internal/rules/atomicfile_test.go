package rules

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteFileAtomicThroughSymlink: writing a rules path that is a
// symlink replaces the file it links to and keeps the symlink; temporary
// files go beside the target. A symlink to nothing is refused and left as
// it is.
func TestWriteFileAtomicThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real", "rules.yaml")
	link := filepath.Join(dir, "etc", "rules.yaml")
	for _, d := range []string{filepath.Dir(real), filepath.Dir(link)} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(real, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../real/rules.yaml", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if to, err := os.Readlink(link); err != nil || to != "../real/rules.yaml" {
		t.Errorf("the symlink became %q, %v; want it kept, to ../real/rules.yaml", to, err)
	}
	if got, _ := os.ReadFile(real); string(got) != "new\n" {
		t.Errorf("target holds %q, want \"new\\n\"", got)
	}
	if fi, err := os.Stat(real); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("target mode %v, %v; want 0640", fi.Mode().Perm(), err)
	}
	for _, d := range []string{filepath.Dir(real), filepath.Dir(link)} {
		if ents, _ := os.ReadDir(d); len(ents) != 1 {
			t.Errorf("%s holds %v; want only the file or the link", d, ents)
		}
	}

	dangling := filepath.Join(dir, "etc", "gone.yaml")
	if err := os.Symlink("../real/gone.yaml", dangling); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(dangling, []byte("new\n")); err == nil {
		t.Error("write through a symlink to a missing file succeeded")
	}
	if fi, err := os.Lstat(dangling); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the dangling symlink was replaced: %v, %v", fi.Mode(), err)
	}
}

// TestWriteFileAtomicKeepsOwner: the new file has the old one's owner,
// group and mode, also through a symlink.
func TestWriteFileAtomicKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to give a file to another user (CI=true: not skipping)")
		}
		t.Skip("needs root to give a file to another user")
	}
	tests := []struct {
		name     string
		uid, gid int
		mode     os.FileMode
		viaLink  bool
	}{
		{"another user", 12345, 23456, 0o640, false},
		{"another group", 0, 23456, 0o664, false},
		{"through a symlink", 12345, 23456, 0o600, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			real := filepath.Join(dir, "rules.yaml")
			if err := os.WriteFile(real, []byte("old\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(real, tt.uid, tt.gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(real, tt.mode); err != nil {
				t.Fatal(err)
			}
			path := real
			if tt.viaLink {
				path = filepath.Join(dir, "link.yaml")
				if err := os.Symlink("rules.yaml", path); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFileAtomic(path, []byte("new\n")); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(real)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != tt.uid || int(st.Gid) != tt.gid || fi.Mode().Perm() != tt.mode {
				t.Errorf("after the write: %d:%d %v; want %d:%d %v", st.Uid, st.Gid, fi.Mode().Perm(), tt.uid, tt.gid, tt.mode)
			}
			if got, _ := os.ReadFile(real); string(got) != "new\n" {
				t.Errorf("file holds %q", got)
			}
		})
	}
}

// TestRemoveStaleTempsThroughSymlink: an interrupted write through a
// symlink leaves its temporary file beside the target; that is where
// RemoveStaleTemps looks too.
func TestRemoveStaleTempsThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	link := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(real, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.yaml", link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".real.yaml.tmp-1"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := RemoveStaleTemps(link); err != nil || n != 1 {
		t.Errorf("RemoveStaleTemps = %d, %v; want 1 removed", n, err)
	}
}
