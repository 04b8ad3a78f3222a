// Package flowlogtest reads flow logs the way a consumer of AWS VPC Flow
// Logs does, written from AWS's published field list for the version 2
// default format and not from fwd's writer, so that tests can check that
// what fwd writes is what such a reader expects.
//
// The default format is 14 space-separated fields, in this order:
//
//	version account-id interface-id srcaddr dstaddr srcport dstport
//	protocol packets bytes start end action log-status
//
// version is 2; account-id is the AWS account (digits) or "-";
// interface-id is a network interface ("eni-" and hex) or "-"; srcaddr
// and dstaddr are IPv4 or IPv6 addresses; srcport and dstport are ports
// (0-65535); protocol is the IANA protocol number; packets and bytes are
// counts; start and end are unix seconds, start <= end; action is ACCEPT
// or REJECT; log-status is OK, NODATA (no traffic in the window) or
// SKIPDATA (records skipped in the window). Any field may be "-" when it
// does not apply or is unknown; a NODATA or SKIPDATA record has "-" for
// the flow fields and the action.
package flowlogtest

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Line is one parsed record. A field written "-" is its Has... false (or
// the zero Addr).
type Line struct {
	Version              int
	Account, Interface   string // "-" when unknown
	Src, Dst             netip.Addr
	SrcPort, DstPort     int
	HasPorts             bool
	Protocol             int
	HasProtocol          bool
	Packets, Bytes       int64
	HasPackets, HasBytes bool
	Start, End           int64
	Action               string // ACCEPT, REJECT or "-"
	Status               string // OK, NODATA or SKIPDATA
}

// Fields is the version 2 default format's field list, in order.
var Fields = []string{"version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
	"protocol", "packets", "bytes", "start", "end", "action", "log-status"}

var (
	accountRE   = regexp.MustCompile(`^[0-9]+$`)
	interfaceRE = regexp.MustCompile(`^eni-[0-9a-f]+$`)
)

// Parse reads one line (without its newline) of the default format.
func Parse(line string) (Line, error) {
	var l Line
	f := strings.Split(line, " ")
	if len(f) != len(Fields) {
		return l, fmt.Errorf("%d fields, want %d", len(f), len(Fields))
	}
	bad := func(i int, want string) error {
		return fmt.Errorf("%s %q: want %s", Fields[i], f[i], want)
	}
	if f[0] != "2" {
		return l, bad(0, "2")
	}
	l.Version = 2
	if l.Account = f[1]; f[1] != "-" && !accountRE.MatchString(f[1]) {
		return l, bad(1, "digits or -")
	}
	if l.Interface = f[2]; f[2] != "-" && !interfaceRE.MatchString(f[2]) {
		return l, bad(2, "eni-... or -")
	}
	l.Status = f[13]
	switch f[13] {
	case "OK", "NODATA", "SKIPDATA":
	default:
		return l, bad(13, "OK, NODATA or SKIPDATA")
	}
	l.Action = f[12]
	switch {
	case f[12] == "ACCEPT" || f[12] == "REJECT":
		if l.Status != "OK" {
			return l, bad(12, "- in a "+l.Status+" record")
		}
	case f[12] == "-":
	default:
		return l, bad(12, "ACCEPT, REJECT or -")
	}
	noFlow := l.Status != "OK"
	for i, a := range []*netip.Addr{&l.Src, &l.Dst} {
		s := f[3+i]
		if s == "-" {
			continue
		}
		if noFlow {
			return l, bad(3+i, "- in a "+l.Status+" record")
		}
		var err error
		if *a, err = netip.ParseAddr(s); err != nil || a.Zone() != "" {
			return l, bad(3+i, "an IPv4 or IPv6 address")
		}
	}
	if f[5] != "-" || f[6] != "-" {
		sp, err1 := strconv.ParseUint(f[5], 10, 16)
		dp, err2 := strconv.ParseUint(f[6], 10, 16)
		if err1 != nil {
			return l, bad(5, "a port 0-65535")
		}
		if err2 != nil {
			return l, bad(6, "a port 0-65535")
		}
		l.SrcPort, l.DstPort, l.HasPorts = int(sp), int(dp), true
	}
	if f[7] != "-" {
		p, err := strconv.ParseUint(f[7], 10, 8)
		if err != nil {
			return l, bad(7, "an IANA protocol number 0-255")
		}
		l.Protocol, l.HasProtocol = int(p), true
	}
	for i, n := range []struct {
		v   *int64
		has *bool
	}{{&l.Packets, &l.HasPackets}, {&l.Bytes, &l.HasBytes}} {
		s := f[8+i]
		if s == "-" {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return l, bad(8+i, "a count or -")
		}
		*n.v, *n.has = v, true
	}
	var err error
	if l.Start, err = strconv.ParseInt(f[10], 10, 64); err != nil || l.Start < 0 {
		return l, bad(10, "unix seconds")
	}
	if l.End, err = strconv.ParseInt(f[11], 10, 64); err != nil || l.End < 0 {
		return l, bad(11, "unix seconds")
	}
	if l.Start > l.End {
		return l, fmt.Errorf("start %d after end %d", l.Start, l.End)
	}
	if l.Status == "OK" && (!l.Src.IsValid() || !l.Dst.IsValid() || !l.HasPorts || !l.HasProtocol || l.Action == "-") {
		return l, fmt.Errorf("an OK record without its flow: %q", line)
	}
	return l, nil
}

// ParseAll reads every line of r; an error names the line.
func ParseAll(r io.Reader) ([]Line, error) {
	var out []Line
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		l, err := Parse(sc.Text())
		if err != nil {
			return out, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}
