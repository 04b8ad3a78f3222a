package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/packet/packettest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// TestIPv6LongExtensionChains (issue 16, bug 5): a SYN whose IPv6
// extension headers push the TCP header past what a small copy range
// would hand fwd is judged on its port like any other: accepted to an
// allowed port (the server answers SYN-ACK), dropped (no answer, counted
// as no-match, not undecodable) to a denied one.
func TestIPv6LongExtensionChains(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, port := range []string{"8080", "8081"} {
		listenIn(t, e.server, "tcp6", "["+server6+"]:"+port)
	}
	rules := e.writeRules("rules.yaml", `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 8080, from: [any]}
`)
	e.startFwd("--rules", rules, "--queues", "1")

	// One destination options header of 256 bytes holding one option of
	// an unknown type that says "skip me" (Linux refuses more than 7
	// bytes of padding), and 40 headers of 8 bytes (padding only).
	long := []packettest.Ext{{Type: ipproto.DestOpts, Len: 256}}
	many := make([]packettest.Ext, 40)
	for i := range many {
		many[i] = packettest.Ext{Type: ipproto.DestOpts}
	}
	for i, tc := range []struct {
		name string
		ext  []packettest.Ext
		port uint16
		want bool
	}{
		{"256-byte option, allowed port", long, 8080, true},
		{"40 headers, allowed port", many, 8080, true},
		{"256-byte option, denied port", long, 8081, false},
		{"40 headers, denied port", many, 8081, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.status().Counters
			sport := uint16(40000 + i)
			pkt := packettest.MustBuild(packettest.Spec{
				Src: netip.MustParseAddr(client6), Dst: netip.MustParseAddr(server6),
				Proto: ipproto.TCP, SrcPort: sport, DstPort: tc.port, TCPFlags: packet.SYN,
				Ext: tc.ext,
			})
			if len(tc.ext) == 1 {
				// The options area after the 2-byte header: one option
				// of type 0x1e (action "skip", RFC 3692 experiment)
				// and length 252 instead of PadN. The TCP checksum does
				// not cover extension headers.
				pkt[40+2] = 0x1e
			}
			wait := 10 * time.Second
			if !tc.want {
				wait = 2 * time.Second
			}
			got, err := synAck(e.client, pkt, tc.port, sport, wait)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("SYN-ACK from port %d: %v, want %v", tc.port, got, tc.want)
			}
			after := e.status().Counters
			counter := "dropped_no_match"
			if tc.want {
				counter = "accepted"
			}
			if after[counter] <= before[counter] {
				t.Errorf("counter %s did not grow: %d -> %d", counter, before[counter], after[counter])
			}
			if after["dropped_undecodable"] != before["dropped_undecodable"] {
				t.Errorf("dropped_undecodable grew: %d -> %d", before["dropped_undecodable"], after["dropped_undecodable"])
			}
		})
	}
}

// synAck sends the raw IPv6 packet pkt (a SYN from sport to port) from
// namespace ns and reports whether a SYN-ACK from port to sport came
// back within wait.
func synAck(ns string, pkt []byte, port, sport uint16, wait time.Duration) (bool, error) {
	var got bool
	err := do(ns, func() error {
		rx, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_TCP)
		if err != nil {
			return fmt.Errorf("raw tcp socket: %w", err)
		}
		defer unix.Close(rx)
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		tx, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(tx)
		if err := unix.Sendto(tx, pkt, 0, &unix.SockaddrInet6{Addr: [16]byte(pkt[24:40])}); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		buf := make([]byte, 1500)
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) {
			// IPv6 raw sockets get the TCP header without the IP header.
			n, _, err := unix.Recvfrom(rx, buf, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("receive: %w", err)
			}
			if n >= 20 && binary.BigEndian.Uint16(buf[0:2]) == port && binary.BigEndian.Uint16(buf[2:4]) == sport &&
				buf[13]&(packet.SYN|packet.ACK) == packet.SYN|packet.ACK {
				got = true
				return nil
			}
		}
		return nil
	})
	return got, err
}
