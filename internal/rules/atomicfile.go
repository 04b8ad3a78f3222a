package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// RemoveStaleTemps removes the temporary files WriteFileAtomic leaves
// next to path (next to the file it links to, when path is a symlink)
// when the process dies between creating and renaming one (kill -9 in the
// middle of an edit), and says how many it removed. Call it only while
// nothing writes path.
func RemoveStaleTemps(path string) (int, error) {
	dirs := []string{path}
	if target, err := filepath.EvalSymlinks(path); err == nil && target != filepath.Clean(path) {
		dirs = append(dirs, target)
	}
	n := 0
	for _, p := range dirs {
		pattern := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
		stale, err := filepath.Glob(pattern)
		if err != nil {
			return n, fmt.Errorf("stale temporary files of %s: %w", path, err)
		}
		for _, f := range stale {
			if err := os.Remove(f); err != nil {
				return n, fmt.Errorf("stale temporary files of %s: %w", path, err)
			}
			n++
		}
	}
	return n, nil
}

// WriteFileAtomic replaces the file at path with data so that a crash at
// any moment leaves either the old or the new file: data goes to a
// temporary file in the same directory, which is given the old file's
// owner, group and mode (0600 and the writer's own when there was none),
// synced and renamed over the file; then the directory is synced. When
// path is a symlink, the file it links to is replaced (the temporary file
// goes beside it) and the symlink stays. On error the old file is
// untouched and the temporary file removed.
func WriteFileAtomic(path string, data []byte) (err error) {
	target, err := writeTarget(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	mode := os.FileMode(0o600)
	var owner *syscall.Stat_t
	if fi, err := os.Stat(target); err == nil {
		mode = fi.Mode().Perm()
		owner, _ = fi.Sys().(*syscall.Stat_t)
	}
	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := keepOwner(tmp, owner); err != nil {
		return fmt.Errorf("write %s: keep its owner and group %d:%d: %w", path, owner.Uid, owner.Gid, err)
	}
	if err := tmp.Chmod(mode); err != nil { // after the chown, which may clear bits
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

// writeTarget is the file WriteFileAtomic replaces: path, or the file a
// symlink at path leads to. A symlink that leads nowhere is refused rather
// than replaced by a regular file.
func writeTarget(path string) (string, error) {
	target, err := filepath.EvalSymlinks(path)
	if err == nil {
		return target, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return "", fmt.Errorf("symlink to a missing file: %w", err)
	}
	return path, nil // a new file
}

// keepOwner gives f the owner and group of the file it replaces, when they
// differ from those f was created with.
func keepOwner(f *os.File, owner *syscall.Stat_t) error {
	if owner == nil {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == owner.Uid && st.Gid == owner.Gid {
		return nil
	}
	return f.Chown(int(owner.Uid), int(owner.Gid))
}
