package replay

import (
	"errors"
	"os"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// mapping is a capture file mapped into memory, read in place as
// ReplayBytes reads a capture: no read(2) copy, no pcapgo per record.
type mapping struct {
	data []byte
}

// minMapBytes is the smallest file worth mapping: below it a read is as
// cheap and the code path is the one every test takes.
const minMapBytes = 1 << 20

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
	return &mapping{data: data}, true
}

func (m *mapping) close() {
	if m.data != nil {
		unix.Munmap(m.data)
		m.data = nil
	}
}

// errFileChanged is the cause of a StopError when a mapped capture was
// cut short by another process while it was read (the access faults).
var errFileChanged = errors.New("capture file truncated while it was read")

// faultGuard turns a fault on a mapped capture (SIGBUS after a
// concurrent truncation) into a panic that recoverFault catches; it
// returns the previous setting for the deferred restore.
func faultGuard() bool { return debug.SetPanicOnFault(true) }

// recoverFault, deferred by the reader of a mapping, makes a memory
// fault a StopError in *stop (at packet n+1); any other panic goes on.
func recoverFault(stop **StopError, n func() uint64) {
	e := recover()
	if e == nil {
		return
	}
	if re, ok := e.(runtime.Error); ok {
		if _, ok := re.(interface{ Addr() uintptr }); ok {
			*stop = &StopError{Packet: n() + 1, Offset: -1, Err: errFileChanged}
			return
		}
	}
	panic(e)
}
