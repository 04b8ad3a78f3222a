// Command loadgen drives the live benchmark's traffic between two network
// namespaces, and creates and deletes them for bench/live/run.sh. It runs
// in the root namespace and opens its sockets inside the namespaces
// (package internal/netns, shared with the end-to-end tests).
//
//	loadgen setup    -client NS -server NS [-dst 198.18.0.1] [-sources 198.18.1.1-198.18.1.16]
//	loadgen teardown -client NS -server NS
//	loadgen udpflows -client NS -server NS [-dst 198.18.0.1] [-port 5353] [-duration 3s]
//	loadgen tcpbulk  -client NS -server NS [-dst 198.18.0.1] [-port 9000] [-duration 3s]
//	loadgen tcpconns -client NS -server NS [-dst 198.18.0.1] [-port 80] [-duration 3s]
//	                 [-parallel 64] [-sources 198.18.1.1-198.18.1.16]
//	loadgen bigtable -classbench FILE -out DIR
//	loadgen tableflows -client NS -server NS -targets FILE [-dst 198.18.0.1] [-duration 3s]
//
// setup creates the two namespaces (deleting stale ones of the same
// names) with their loopback up, joined by a veth pair eth0 - eth0: the
// server has -dst/15, the client 198.18.0.2/15 and the -sources
// addresses. teardown kills what still runs in them and deletes them.
//
// udpflows sends IPv4 UDP packets from a raw socket in the client
// namespace as fast as one core can, each from a new source address (from
// 198.19.0.0/16, since --queue-balance hashes addresses) and source port:
// every packet is a new flow. It counts what reached the server's UDP layer
// (/proc/net/snmp in the server namespace) and prints one line:
//
//	udpflows sent=N sent_per_s=N delivered=N flows_per_s=N
//
// tcpbulk copies data over one TCP connection from the client to a
// listener in the server namespace and prints:
//
//	tcpbulk bytes=N gbit_per_s=F
//
// tcpconns runs -parallel connection loops in the client namespace, each
// connecting from the next of -sources (addresses the client already has;
// --queue-balance hashes addresses, so one source would use one queue),
// sending an HTTP/1.0 request and reading the answer to its end, and
// prints the rate of completed exchanges:
//
//	tcpconns conns=N conns_per_s=F failed=N
//
// bigtable converts a ClassBench filter set into the live benchmark's
// large table (internal/classbench, sources mapped into 198.19.0.0/16,
// duplicates removed) and writes into DIR: large.yaml and one.yaml (fwd
// rules files: every rule, one rule admitting 198.19.0.0/16),
// iptables.rules (one linear rule per rule), nft.rules (one interval set
// ip saddr . meta l4proto . th dport, the first of two overlapping
// elements kept, added in chunks) and targets.txt (the tcp and udp rules
// of the set, which every variant admits). It prints one line:
//
//	bigtable file=F boxes=N converted=N rules=N nft_kept=N nft_overlapping=N targets=N
//
// tableflows sends, like udpflows, a new flow per packet from a raw
// socket, each from a source address and to a destination port of a
// target drawn at random (a TCP SYN for a tcp rule, a UDP datagram
// otherwise), and counts what passed the server's INPUT (IP InDelivers):
//
//	tableflows targets=N sent=N sent_per_s=N delivered=N flows_per_s=N
//
// Only addresses in 198.18.0.0/15 are used, only inside the namespaces.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fwd-project/fwd/internal/netns"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen setup|teardown|udpflows|tcpbulk|tcpconns|tableflows -client NS -server NS [flags], loadgen bigtable -classbench FILE -out DIR")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	client := fs.String("client", "", "client network namespace")
	server := fs.String("server", "", "server network namespace")
	dst := fs.String("dst", "198.18.0.1", "server address (198.18.0.0/15)")
	port := fs.Int("port", 0, "destination port (default 5353 for udpflows, 9000 for tcpbulk)")
	dur := fs.Duration("duration", 3*time.Second, "how long to send (at most 30s)")
	parallel := fs.Int("parallel", 64, "tcpconns: connection loops at once")
	sources := fs.String("sources", "198.18.1.1-198.18.1.16", "setup, tcpconns: client source address range FIRST-LAST")
	in := fs.String("classbench", "", "bigtable: ClassBench filter set")
	out := fs.String("out", "", "bigtable: directory to write into")
	targets := fs.String("targets", "", "tableflows: targets file written by bigtable")
	fs.Parse(os.Args[2:])
	if os.Args[1] == "bigtable" {
		if *in == "" || *out == "" {
			fail(errors.New("bigtable: -classbench and -out are required"))
		}
		if err := bigTable(*in, *out); err != nil {
			fail(err)
		}
		return
	}
	addr, err := netip.ParseAddr(*dst)
	if err != nil || !netip.MustParsePrefix("198.18.0.0/15").Contains(addr) {
		fail(fmt.Errorf("-dst %q: want an address in 198.18.0.0/15", *dst))
	}
	if *client == "" || *server == "" {
		fail(errors.New("-client and -server are required"))
	}
	if *dur <= 0 || *dur > 30*time.Second {
		fail(fmt.Errorf("-duration %v: want 0 < d <= 30s", *dur))
	}
	switch os.Args[1] {
	case "setup":
		var srcs []netip.Addr
		srcs, err = addrRange(*sources)
		if err == nil {
			err = setup(*client, *server, addr, srcs)
		}
	case "teardown":
		err = teardown(*client, *server)
	case "udpflows":
		if *port == 0 {
			*port = 5353
		}
		err = udpFlows(*client, *server, addr, uint16(*port), *dur)
	case "tcpbulk":
		if *port == 0 {
			*port = 9000
		}
		err = tcpBulk(*client, *server, addr, uint16(*port), *dur)
	case "tcpconns":
		if *port == 0 {
			*port = 80
		}
		var srcs []netip.Addr
		srcs, err = addrRange(*sources)
		if err == nil {
			err = tcpConns(*client, addr, uint16(*port), *dur, *parallel, srcs)
		}
	case "tableflows":
		err = tableFlows(*client, *server, addr, *targets, *dur)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}

func udpFlows(client, server string, dst netip.Addr, port uint16, dur time.Duration) error {
	// A socket on the server takes the datagrams (NoPorts would answer
	// each with an ICMP error); it is not read: the counters count.
	var sink net.PacketConn
	if err := netns.Do(server, func() (err error) {
		sink, err = net.ListenPacket("udp4", netip.AddrPortFrom(dst, port).String())
		return err
	}); err != nil {
		return err
	}
	defer sink.Close()
	if uc, ok := sink.(*net.UDPConn); ok {
		uc.SetReadBuffer(64 << 20)
	}
	before, err := netns.UDPInput(server)
	if err != nil {
		return err
	}
	// Source 198.19.x.y and a source port that moves on every 65536
	// packets: each packet a new 5-tuple.
	sent, err := netns.Flood{
		Dst: dst, Port: port,
		Src: netip.MustParseAddr("198.19.0.0"), Sources: 1 << 16,
		Payload: 16, Duration: dur, SendBuffer: 4 << 20,
	}.Run(client)
	if err != nil {
		return err
	}
	// Let the queue drain what it holds.
	time.Sleep(500 * time.Millisecond)
	after, err := netns.UDPInput(server)
	if err != nil {
		return err
	}
	delivered := after - before
	secs := dur.Seconds()
	fmt.Printf("udpflows sent=%d sent_per_s=%.0f delivered=%d flows_per_s=%.0f\n", sent, float64(sent)/secs, delivered, float64(delivered)/secs)
	return nil
}

func tcpBulk(client, server string, dst netip.Addr, port uint16, dur time.Duration) error {
	addr := netip.AddrPortFrom(dst, port).String()
	var ln net.Listener
	if err := netns.Do(server, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		return err
	}
	defer ln.Close()
	var received atomic.Int64
	var first, last atomic.Int64
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				now := time.Now().UnixNano()
				first.CompareAndSwap(0, now)
				last.Store(now)
				received.Add(int64(n))
			}
			if err == io.EOF {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
		}
	}()
	var c net.Conn
	if err := netns.Do(client, func() (err error) { c, err = net.DialTimeout("tcp4", addr, 3*time.Second); return err }); err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return fmt.Errorf("write: %w", err)
		}
	}
	c.Close()
	if err := <-done; err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	secs := time.Duration(last.Load() - first.Load()).Seconds()
	if secs <= 0 {
		return errors.New("nothing received")
	}
	fmt.Printf("tcpbulk bytes=%d gbit_per_s=%.2f\n", received.Load(), float64(received.Load())*8/secs/1e9)
	return nil
}

// addrRange expands FIRST-LAST (IPv4, within 198.18.0.0/15, at most 4096).
func addrRange(s string) ([]netip.Addr, error) {
	first, last, ok := strings.Cut(s, "-")
	if !ok {
		last = first
	}
	a, err := netip.ParseAddr(first)
	if err != nil {
		return nil, fmt.Errorf("-sources: %w", err)
	}
	b, err := netip.ParseAddr(last)
	if err != nil {
		return nil, fmt.Errorf("-sources: %w", err)
	}
	bench := netip.MustParsePrefix("198.18.0.0/15")
	if !bench.Contains(a) || !bench.Contains(b) || b.Less(a) {
		return nil, fmt.Errorf("-sources %q: want FIRST-LAST within 198.18.0.0/15", s)
	}
	var out []netip.Addr
	for x := a; x.Compare(b) <= 0 && len(out) < 4096; x = x.Next() {
		out = append(out, x)
	}
	return out, nil
}

func tcpConns(client string, dst netip.Addr, port uint16, dur time.Duration, parallel int, srcs []netip.Addr) error {
	if parallel < 1 || parallel > 1024 {
		return fmt.Errorf("-parallel %d: want 1..1024", parallel)
	}
	raddr := netip.AddrPortFrom(dst, port).String()
	req := []byte("GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
	var conns, failed atomic.Uint64
	deadline := time.Now().Add(dur)
	errc := make(chan error, parallel)
	for w := range parallel {
		src := srcs[w%len(srcs)]
		go func() {
			errc <- netns.Do(client, func() error {
				d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
				buf := make([]byte, 4096)
				for time.Now().Before(deadline) {
					c, err := d.Dial("tcp4", raddr)
					if err != nil {
						failed.Add(1)
						continue
					}
					c.SetDeadline(time.Now().Add(2 * time.Second))
					ok := false
					if _, err := c.Write(req); err == nil {
						for {
							n, err := c.Read(buf)
							ok = ok || n > 0
							if err != nil {
								ok = ok && err == io.EOF
								break
							}
						}
					}
					c.Close()
					if ok {
						conns.Add(1)
					} else {
						failed.Add(1)
					}
				}
				return nil
			})
		}()
	}
	for range parallel {
		if err := <-errc; err != nil {
			return err
		}
	}
	fmt.Printf("tcpconns conns=%d conns_per_s=%.0f failed=%d\n", conns.Load(), float64(conns.Load())/dur.Seconds(), failed.Load())
	return nil
}
