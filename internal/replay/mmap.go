package replay

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Capture is a capture file opened for replay (Open). A regular file
// holding a classic pcap is mapped into memory and read in place, as
// ReplayBytes reads a capture: no read(2) copy, no pcapgo per record.
// Its pages are mapped in ahead of the reader by a goroutine from the
// moment it is opened, so that a caller can open the capture, then load
// its rules while the first pages come in.
type Capture struct {
	path string
	f    *os.File
	st   os.FileInfo
	m    *mapping // nil: read as a stream
}

// Open opens the capture at path for ReplayCapture. The caller closes
// it.
func Open(path string) (*Capture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open capture: %w", err)
	}
	c := &Capture{path: path, f: f, st: st}
	c.m, _ = mapFile(f, st)
	return c, nil
}

// Close unmaps and closes the capture.
func (c *Capture) Close() error {
	if c.m != nil {
		c.m.close()
		c.m = nil
	}
	return c.f.Close()
}

// mapping is a capture file mapped into memory, and the goroutine that
// maps its pages in ahead of the reader.
type mapping struct {
	data []byte
	read atomic.Int64 // how far the reader has got
	stop atomic.Bool
	done chan struct{}
}

// minMapBytes is the smallest file worth mapping: below it a read is as
// cheap.
const minMapBytes = 1 << 20

// Populating ahead of the reader: in chunks, at most populateAhead bytes
// ahead of it (a file larger than memory must not evict what the reader
// has not reached).
const (
	populateChunk = 4 << 20
	populateAhead = 256 << 20
)

// mapFile maps f (of size bytes) for reading, when it is a regular file
// of at least minMapBytes holding a classic pcap; ok is false otherwise
// (a pipe, a device, pcapng, a gzip capture, a failed mmap), and the
// caller reads f as a stream.
func mapFile(f *os.File, st os.FileInfo) (m *mapping, ok bool) {
	size := st.Size()
	if !st.Mode().IsRegular() || size < minMapBytes || size != int64(int(size)) {
		return nil, false
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, false
	}
	if _, ok, _ := openMem(data); !ok {
		unix.Munmap(data)
		return nil, false
	}
	// Read once, front to back: the kernel reads ahead further and drops
	// what was read.
	_ = unix.Madvise(data, unix.MADV_SEQUENTIAL)
	m = &mapping{data: data, done: make(chan struct{})}
	if runtime.GOMAXPROCS(0) > 1 {
		go m.populate()
	} else {
		close(m.done)
	}
	return m, true
}

// populate maps the pages in ahead of the reader (MADV_POPULATE_READ,
// Linux 5.14), which costs less than the reader's page faults and runs
// on another core. On an older kernel it stops, and the reader faults
// the pages in itself.
func (m *mapping) populate() {
	defer close(m.done)
	for off := 0; off < len(m.data) && !m.stop.Load(); {
		if int64(off) > m.read.Load()+populateAhead {
			time.Sleep(time.Millisecond)
			continue
		}
		end := min(off+populateChunk, len(m.data))
		if unix.Madvise(m.data[off:end], unix.MADV_POPULATE_READ) != nil {
			return
		}
		off = end
	}
}

func (m *mapping) close() {
	m.stop.Store(true)
	<-m.done
	unix.Munmap(m.data)
	m.data = nil
}

// errFileChanged is the cause of a StopError when a mapped capture was
// cut short by another process while it was read (the access faults).
var errFileChanged = errors.New("capture file truncated while it was read")

// faultGuard turns a fault on a mapped capture (SIGBUS after a
// concurrent truncation) into a panic that recoverFault catches; it
// returns the previous setting for the deferred restore.
func faultGuard() bool { return debug.SetPanicOnFault(true) }

// recoverFault, deferred by the reader of mapping m, makes a memory
// fault inside m a StopError in *stop (at packet n+1); any other panic,
// a fault elsewhere included, goes on.
func recoverFault(m *mapping, stop **StopError, n func() uint64) {
	e := recover()
	if e == nil {
		return
	}
	if m.faulted(e) {
		*stop = &StopError{Packet: n() + 1, Offset: -1, Err: errFileChanged}
		return
	}
	panic(e)
}

// faulted says whether the recovered value e is a fault on an address
// inside m.
func (m *mapping) faulted(e any) bool {
	re, ok := e.(runtime.Error)
	if !ok {
		return false
	}
	fa, ok := re.(interface{ Addr() uintptr })
	if !ok || len(m.data) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(m.data)))
	return fa.Addr() >= lo && fa.Addr()-lo < uintptr(len(m.data))
}
