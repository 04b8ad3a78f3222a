package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/netns"
	"golang.org/x/sys/unix"
)

// target is one line of targets.txt: a rule the flood's packets hit.
type target struct {
	tcp    bool
	from   netip.Prefix
	lo, hi uint16
}

// readTargets reads bigtable's targets.txt; every prefix must lie in
// bigNet.
func readTargets(name string) ([]target, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ts []target
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 || (fs[0] != "tcp" && fs[0] != "udp") {
			return nil, fmt.Errorf("%s:%d: want tcp|udp PREFIX LO HI", name, line)
		}
		p, err := netip.ParsePrefix(fs[1])
		if err != nil || !bigNet.Contains(p.Addr()) || p.Bits() < bigNet.Bits() {
			return nil, fmt.Errorf("%s:%d: prefix %q: want one within %v", name, line, fs[1], bigNet)
		}
		lo, err1 := strconv.ParseUint(fs[2], 10, 16)
		hi, err2 := strconv.ParseUint(fs[3], 10, 16)
		if err1 != nil || err2 != nil || lo > hi {
			return nil, fmt.Errorf("%s:%d: ports %s %s: want LO HI", name, line, fs[2], fs[3])
		}
		ts = append(ts, target{tcp: fs[0] == "tcp", from: p, lo: uint16(max(lo, 1)), hi: uint16(max(hi, 1))})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("%s: no targets", name)
	}
	return ts, nil
}

// templates is how many packets the flood builds up front, each for a
// target drawn at random; packet i is template i%templates with source
// port 1024+(i/templates)%60000, a new 5-tuple for the first 3.9 billion.
const templates = 1 << 16

// tmpl is one prebuilt packet: IPv4 header and a TCP SYN or a UDP header.
type tmpl struct {
	pkt []byte
	// sum is the TCP checksum's one's-complement sum over the pseudo
	// header and the segment with source port 0 (tcp only).
	sum uint32
}

func buildTemplates(ts []target, dst netip.Addr) []tmpl {
	rng := rand.New(rand.NewPCG(15, 1))
	d := dst.As4()
	out := make([]tmpl, templates)
	for i := range out {
		t := ts[rng.IntN(len(ts))]
		a := t.from.Addr().As4()
		host := rng.Uint32() & (1<<(32-t.from.Bits()) - 1)
		src := binary.BigEndian.Uint32(a[:]) | host
		if src&0xff == 0xff || src&0xff == 0 {
			src ^= 1 // no .0 or .255 source: the last one is the subnet's broadcast
		}
		if !t.from.Contains(addr4(src)) {
			src ^= 1
		}
		port := t.lo + uint16(rng.IntN(int(t.hi-t.lo)+1))
		l4 := 8
		proto := byte(unix.IPPROTO_UDP)
		if t.tcp {
			l4, proto = 20, unix.IPPROTO_TCP
		}
		p := make([]byte, 20+l4)
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		p[8], p[9] = 64, proto
		binary.BigEndian.PutUint32(p[12:], src)
		copy(p[16:20], d[:])
		binary.BigEndian.PutUint16(p[22:], port)
		if !t.tcp {
			binary.BigEndian.PutUint16(p[24:], 8) // checksum 0: none
			out[i] = tmpl{pkt: p}
			continue
		}
		binary.BigEndian.PutUint32(p[24:], rng.Uint32()) // sequence number
		p[32] = 5 << 4                                   // data offset
		p[33] = 0x02                                     // SYN
		binary.BigEndian.PutUint16(p[34:], 65535)        // window
		var sum uint32
		for j := 12; j < 20; j += 2 { // pseudo header: addresses
			sum += uint32(binary.BigEndian.Uint16(p[j:]))
		}
		sum += unix.IPPROTO_TCP + 20
		for j := 20; j < 40; j += 2 {
			sum += uint32(binary.BigEndian.Uint16(p[j:]))
		}
		out[i] = tmpl{pkt: p, sum: sum}
	}
	return out
}

func addr4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// tableFlows floods new flows at the targets from a raw socket in the
// client namespace for dur and prints how many passed the server's
// firewall: the server's IP InDelivers (TCP and UDP, to a socket or not).
func tableFlows(client, server string, dst netip.Addr, targetsFile string, dur time.Duration) error {
	ts, err := readTargets(targetsFile)
	if err != nil {
		return err
	}
	pkts := buildTemplates(ts, dst)
	before, err := ipDelivered(server)
	if err != nil {
		return err
	}
	var sent uint64
	err = netns.Do(client, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20); err != nil {
			return fmt.Errorf("raw socket send buffer: %w", err)
		}
		sent, err = sendTemplates(fd, pkts, dst, dur)
		return err
	})
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // let the queue drain what it holds
	after, err := ipDelivered(server)
	if err != nil {
		return err
	}
	secs := dur.Seconds()
	fmt.Printf("tableflows targets=%d sent=%d sent_per_s=%.0f delivered=%d flows_per_s=%.0f\n",
		len(ts), sent, float64(sent)/secs, after-before, float64(after-before)/secs)
	return nil
}

func sendTemplates(fd int, pkts []tmpl, dst netip.Addr, dur time.Duration) (uint64, error) {
	to := &unix.SockaddrInet4{Addr: dst.As4()}
	deadline := time.Now().Add(dur)
	var sent uint64
	for i := uint64(0); ; i++ {
		if i&255 == 0 && time.Now().After(deadline) {
			return sent, nil
		}
		t := &pkts[i%templates]
		sport := uint16(1024 + (i/templates)%60000)
		binary.BigEndian.PutUint16(t.pkt[20:], sport)
		if t.sum != 0 {
			s := t.sum + uint32(sport)
			for s>>16 != 0 {
				s = s&0xffff + s>>16
			}
			binary.BigEndian.PutUint16(t.pkt[36:], ^uint16(s))
		}
		if err := unix.Sendto(fd, t.pkt, 0, to); err != nil {
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return sent, fmt.Errorf("send: %w", err)
		}
		sent++
	}
}

// ipDelivered returns the server namespace's Ip InDelivers: packets
// that passed INPUT and reached a transport protocol.
func ipDelivered(ns string) (uint64, error) {
	var n uint64
	err := netns.Do(ns, func() error {
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		var names []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "Ip:" {
				continue
			}
			if names == nil {
				names = f
				continue
			}
			for i, name := range names {
				if name == "InDelivers" && i < len(f) {
					n, err = strconv.ParseUint(f[i], 10, 64)
					return err
				}
			}
		}
		return errors.New("snmp: no Ip InDelivers")
	})
	return n, err
}
