package flowlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// rotator is the flow log's files: lines go to path through a buffer;
// before a line would take path past maxSize, path becomes path.1, path.1
// becomes path.2 and so on, the oldest (path.N-1 for N files) is
// removed, and a new path is started. A line is never split across
// files. It belongs to the writer goroutine.
type rotator struct {
	path    string
	maxSize int64
	files   int
	f       *os.File
	bw      *bufio.Writer
	size    int64 // of path, buffered bytes included
}

// fileMode is the flow log's mode: it names peers, so not world-readable.
const fileMode = 0o640

func openRotator(path string, maxSize int64, files int) (*rotator, error) {
	r := &rotator{path: path, maxSize: maxSize, files: files}
	if err := r.open(); err != nil {
		return nil, err
	}
	r.bw = bufio.NewWriterSize(r.f, 64<<10)
	return r, nil
}

// open opens path for appending and notes its size.
func (r *rotator) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("flow log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("flow log: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("flow log %s: not a regular file", r.path)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// name is the file that holds the i-th oldest rotation (0 is path).
func (r *rotator) name(i int) string {
	if i == 0 {
		return r.path
	}
	return r.path + "." + strconv.Itoa(i)
}

// writeLine writes one line, rotating first when it would not fit.
func (r *rotator) writeLine(line []byte) error {
	if r.size > 0 && r.size+int64(len(line)) > r.maxSize {
		if err := r.rotate(); err != nil {
			return err
		}
	}
	n, err := r.bw.Write(line)
	r.size += int64(n)
	if err != nil {
		// A failed buffer stays failed; start afresh with the next line.
		r.bw.Reset(r.writer())
		return fmt.Errorf("flow log: %w", err)
	}
	return nil
}

// rotate closes path, shifts the older files up by one, removing the
// oldest, and starts a new path. When the new path cannot be opened,
// lines are discarded (and the error returned) until the next rotation
// opens one.
func (r *rotator) rotate() error {
	errs := []error{r.bw.Flush()}
	if r.f != nil {
		errs = append(errs, r.f.Close())
		r.f = nil
	}
	oldest := r.files - 1 // with one file, path itself
	if err := os.Remove(r.name(oldest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for i := oldest - 1; i >= 0; i-- {
		if err := os.Rename(r.name(i), r.name(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := r.open(); err != nil {
		errs = append(errs, err)
		r.size = 0
	}
	r.bw.Reset(r.writer())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flow log rotation: %w", err)
	}
	return nil
}

// flush writes the buffered lines to the file.
func (r *rotator) flush() error {
	if err := r.bw.Flush(); err != nil {
		// A failed buffer stays failed; start afresh with the next line.
		r.bw.Reset(r.writer())
		return fmt.Errorf("flow log: %w", err)
	}
	return nil
}

func (r *rotator) writer() io.Writer {
	if r.f == nil {
		return discard{}
	}
	return r.f
}

// close flushes and closes the file.
func (r *rotator) close() error {
	err := r.flush()
	if r.f != nil {
		err = errors.Join(err, r.f.Close())
		r.f = nil
	}
	return err
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
