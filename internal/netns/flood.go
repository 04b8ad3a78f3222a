package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// MaxFloodDuration bounds Flood.Duration.
const MaxFloodDuration = time.Minute

// Flood is a raw flood of new IPv4 UDP flows: packet i (from 0) comes
// from source address Src+i%Sources and source port
// 1024+(i/Sources)%60000, so every one of the first Sources*60000 packets
// is a flow of its own. Its UDP checksum is 0 (none, allowed over IPv4),
// which conntrack takes as valid: each packet is a NEW connection, the
// kind a firewall judges. The kernel fills in the IP checksum.
type Flood struct {
	Dst  netip.Addr // IPv4, in 198.18.0.0/15
	Port uint16
	// Src is the first source address and Sources how many consecutive
	// ones are used (1 to 65536); all of them in 198.18.0.0/15.
	Src     netip.Addr
	Sources int
	// Payload is the number of zero bytes after the UDP header (0-1472).
	Payload int
	// Count stops the flood once that many packets are sent; 0 sets no
	// count limit.
	Count uint64
	// Duration stops the flood after that long; it is required (0 <
	// Duration <= MaxFloodDuration), so that a flood always ends.
	Duration time.Duration
	// Stop, when not nil, stops the flood once closed.
	Stop <-chan struct{}
	// SendBuffer sets the raw socket's SO_SNDBUF in bytes; 0 keeps the
	// default.
	SendBuffer int
}

// check refuses a flood that would leave the test range or never end.
func (f Flood) check() error {
	if !f.Dst.Is4() || !bench4.Contains(f.Dst) {
		return fmt.Errorf("netns: flood destination %v: want an IPv4 address in %v", f.Dst, bench4)
	}
	if f.Sources < 1 || f.Sources > 1<<16 {
		return fmt.Errorf("netns: flood of %d source addresses: want 1 to 65536", f.Sources)
	}
	if !f.Src.Is4() || !bench4.Contains(f.Src) || !bench4.Contains(addAddr4(f.Src, uint32(f.Sources-1))) {
		return fmt.Errorf("netns: flood sources %v + %d: want IPv4 addresses in %v", f.Src, f.Sources, bench4)
	}
	if f.Payload < 0 || f.Payload > 1500-20-8 {
		return fmt.Errorf("netns: flood payload %d bytes: want 0 to 1472", f.Payload)
	}
	if f.Duration <= 0 || f.Duration > MaxFloodDuration {
		return fmt.Errorf("netns: flood duration %v: want 0 < d <= %v", f.Duration, MaxFloodDuration)
	}
	return nil
}

// addAddr4 is the IPv4 address n after a, wrapping at the end of the
// address space (where check then fails).
func addAddr4(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+n)
	return netip.AddrFrom4(b)
}

// Run sends the flood from a raw socket in namespace ns until its count,
// its duration or its stop channel ends it, and returns how many packets
// the kernel took. A send refused for want of buffer space (ENOBUFS,
// EAGAIN) is not counted and not retried: the flood moves on to the next
// packet. Bad input is an error before anything is sent.
func (f Flood) Run(ns string) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	var sent uint64
	err := Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("netns: raw socket: %w", err)
		}
		defer unix.Close(fd)
		if f.SendBuffer > 0 {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, f.SendBuffer); err != nil {
				return fmt.Errorf("netns: raw socket send buffer: %w", err)
			}
		}
		sent, err = f.send(fd)
		return err
	})
	return sent, err
}

// send is Run's loop on an open raw socket.
func (f Flood) send(fd int) (uint64, error) {
	to := &unix.SockaddrInet4{Addr: f.Dst.As4()}
	pkt := make([]byte, 20+8+f.Payload)
	pkt[0] = 0x45 // IPv4, 20-byte header
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8] = 64 // TTL
	pkt[9] = unix.IPPROTO_UDP
	d := f.Dst.As4()
	copy(pkt[16:20], d[:])
	binary.BigEndian.PutUint16(pkt[22:], f.Port)
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+f.Payload))
	s := f.Src.As4()
	first := binary.BigEndian.Uint32(s[:])
	n := uint32(f.Sources)
	deadline := time.Now().Add(f.Duration)
	var sent uint64
	for i := uint32(0); f.Count == 0 || sent < f.Count; i++ {
		if i&255 == 0 {
			select {
			case <-f.Stop: // a nil channel never stops
				return sent, nil
			default:
			}
			if time.Now().After(deadline) {
				return sent, nil
			}
		}
		binary.BigEndian.PutUint32(pkt[12:16], first+i%n)
		binary.BigEndian.PutUint16(pkt[20:], uint16(1024+(i/n)%60000))
		if err := unix.Sendto(fd, pkt, 0, to); err != nil {
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return sent, fmt.Errorf("netns: flood send: %w", err)
		}
		sent++
	}
	return sent, nil
}
