package filter

import (
	"testing"
	"unsafe"
)

func TestMemoryBytes(t *testing.T) {
	var empty Table
	base := int(unsafe.Sizeof(empty))
	if got := empty.MemoryBytes(); got != base {
		t.Errorf("empty table: %d bytes, want %d", got, base)
	}
	// One protocol with an IPv4 prefix: an l1 of 65536 references.
	pt := &protoTable{l1: make([]uint64, 1<<16)}
	one := Table{pieces: make([]uint64, 3)}
	one.dirs[0].byProto[6] = pt
	one.dirs[0].byProto[17] = pt // shared: counted once
	want := base + 3*8 + int(unsafe.Sizeof(*pt)) + 1<<16*8
	if got := one.MemoryBytes(); got != want {
		t.Errorf("one protocol table: %d bytes, want %d", got, want)
	}
}
