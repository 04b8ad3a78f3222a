package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// DefaultMaxFileBytes bounds the size of a rules file when
// Options.MaxFileBytes is zero: 16 MiB, hundreds of times the size of a
// file at DefaultMaxRules.
const DefaultMaxFileBytes = 16 << 20

// readTries is how many times ReadFile reads a file that keeps changing
// under it before it gives up.
const readTries = 5

func (o Options) maxFileBytes() int64 {
	if o.MaxFileBytes <= 0 {
		return DefaultMaxFileBytes
	}
	return o.MaxFileBytes
}

// ReadFile reads a rules file. Every reader of a rules file (fwd at start,
// reloads, edits, fwctl validate, check and replay) uses it, so none of
// them can be wedged or exhausted by what sits at the path:
//
//   - it follows symlinks, but refuses anything that is not a regular
//     file (a named pipe, a device, a directory, a socket) before reading
//     a byte, and it opens with O_NONBLOCK, so a FIFO cannot block it;
//   - it refuses a file over maxBytes (zero or less: DefaultMaxFileBytes)
//     and never reads more than maxBytes+1 bytes;
//   - it reads the file twice and compares its size, modification and
//     change times and inode before and after; when the two reads or the
//     two stats differ (a writer rewrote the file in place meanwhile) it
//     tries again, and after a few tries refuses with "changed while being
//     read".
//
// A read of a regular file of bounded size does not block for long, so a
// reload or an edit that reads with ReadFile is bounded in time. What
// ReadFile cannot see is a writer that pauses in the middle of a rewrite
// in place: the half-written file stands still and is read as it is.
// Writers should replace the file atomically (WriteFileAtomic, or an
// editor's write-and-rename).
func ReadFile(path string, maxBytes int64) ([]byte, error) {
	return readFile(path, maxBytes, nil)
}

// readFile is ReadFile; during, when not nil, runs after each read and
// before the second stat (tests use it to change the file mid-read).
func readFile(path string, maxBytes int64, during func(try int)) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFileBytes
	}
	// Stat first, so that a device is refused without being opened
	// (opening some devices has effects); the fstat below is what counts.
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if err := regular(path, fi); err != nil {
		return nil, err
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	for try := 1; ; try++ {
		data, same, err := readOnce(f, path, maxBytes, func() {
			if during != nil {
				during(try)
			}
		})
		if err != nil || same {
			return data, err
		}
		if try == readTries {
			return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("changed while being read (%d tries): something rewrites it in place; write a temporary file and rename it over the rules file instead", readTries)}
		}
	}
}

// readOnce reads f from the start and reports whether its identity, size
// and times were the same before and after.
func readOnce(f *os.File, path string, maxBytes int64, during func()) (data []byte, same bool, err error) {
	before, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if err := regular(path, before); err != nil {
		return nil, false, err
	}
	if before.Size() > maxBytes {
		return nil, false, tooBig(path, before.Size(), maxBytes)
	}
	buf := make([]byte, 0, before.Size()+1)
	data, err = readAllLimited(io.NewSectionReader(f, 0, maxBytes+1), buf)
	if err != nil {
		return nil, false, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(data)) > maxBytes {
		return nil, false, tooBig(path, int64(len(data)), maxBytes)
	}
	again, err := sameContent(f, data)
	if err != nil {
		return nil, false, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	during()
	after, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	return data, again && int64(len(data)) == after.Size() && sameVersion(before, after), nil
}

// sameContent reads f a second time and reports whether it holds data.
// A write in place that was under way at the first stat changes neither
// the size nor the times again, but does change what a second read sees.
func sameContent(f *os.File, data []byte) (bool, error) {
	buf := make([]byte, min(len(data)+1, 64<<10))
	for off := 0; ; {
		n, err := f.ReadAt(buf, int64(off))
		if !bytes.Equal(buf[:n], data[off:min(off+n, len(data))]) {
			return false, nil
		}
		off += n
		if errors.Is(err, io.EOF) {
			return off == len(data), nil
		}
		if err != nil {
			return false, err
		}
	}
}

// readAllLimited is io.ReadAll into buf.
func readAllLimited(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func tooBig(path string, size, limit int64) error {
	return &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("is %s, over the limit of %s for a rules file (raise it with --max-file-bytes)", byteSize(size), byteSize(limit))}
}

func byteSize(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d bytes (%.1f MiB)", n, float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// sameVersion reports whether two stats of one open file show no change
// between them.
func sameVersion(a, b os.FileInfo) bool {
	if a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()) {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return ok1 == ok2
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino && sa.Ctim == sb.Ctim
}

// regular refuses what is not a regular file, naming what it is.
func regular(path string, fi os.FileInfo) error {
	var what string
	switch m := fi.Mode(); {
	case m.IsRegular():
		return nil
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		what = "a character device"
	case m&fs.ModeDevice != 0:
		what = "a block device"
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	default:
		what = fmt.Sprintf("a %v", m.Type())
	}
	return &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("is %s, not a regular file", what)}
}
