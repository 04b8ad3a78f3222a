package netns

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// UDPInput returns how many UDP datagrams have reached the UDP layer of
// namespace ns since it was created: every datagram the firewall let
// through, whether a socket took it (InDatagrams), no socket listened
// (NoPorts) or it was in error (InErrors), from the namespace's
// /proc/net/snmp.
func UDPInput(ns string) (uint64, error) {
	var n uint64
	err := Do(ns, func() error {
		// /proc/net is the namespace of the process's main thread;
		// thread-self is this thread's, which is in ns.
		f, err := os.Open("/proc/thread-self/net/snmp")
		if err != nil {
			return fmt.Errorf("netns: %w", err)
		}
		defer f.Close()
		n, err = parseUDPInput(f)
		return err
	})
	return n, err
}

// parseUDPInput sums InDatagrams, NoPorts and InErrors of the "Udp:"
// lines (names, then values) of /proc/net/snmp.
func parseUDPInput(r io.Reader) (uint64, error) {
	var names, values []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
		} else if values == nil {
			values = f
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("netns: read snmp counters: %w", err)
	}
	if values == nil || len(values) != len(names) {
		return 0, fmt.Errorf("netns: snmp counters: no Udp: names and values of the same length")
	}
	var n uint64
	found := 0
	for i, name := range names {
		switch name {
		case "InDatagrams", "NoPorts", "InErrors":
			v, err := strconv.ParseUint(values[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("netns: snmp Udp %s: %w", name, err)
			}
			n += v
			found++
		}
	}
	if found != 3 {
		return 0, fmt.Errorf("netns: snmp counters: Udp InDatagrams, NoPorts or InErrors missing")
	}
	return n, nil
}
