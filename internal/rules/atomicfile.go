package rules

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces the file at path with data so that a crash at
// any moment leaves either the old or the new file: data goes to a
// temporary file in the same directory, which is synced, given the old
// file's mode (0600 when there was none) and renamed over path; then the
// directory is synced. On error the old file is untouched and the
// temporary file removed.
// RemoveStaleTemps removes the temporary files WriteFileAtomic leaves
// next to path when the process dies between creating and renaming one
// (kill -9 in the middle of an edit), and says how many it removed. Call it
// only while nothing writes path.
func RemoveStaleTemps(path string) (int, error) {
	pattern := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	stale, err := filepath.Glob(pattern)
	if err != nil {
		return 0, fmt.Errorf("stale temporary files of %s: %w", path, err)
	}
	n := 0
	for _, f := range stale {
		if err := os.Remove(f); err != nil {
			return n, fmt.Errorf("stale temporary files of %s: %w", path, err)
		}
		n++
	}
	return n, nil
}

func WriteFileAtomic(path string, data []byte) (err error) {
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
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
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
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
