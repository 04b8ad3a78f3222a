// Package classbench reads ClassBench packet-classification filter sets
// and turns them into security-group rules files, for benchmarks on rule
// tables of realistic shape.
//
// A ClassBench rule is a 5-tuple box: source and destination prefixes,
// source and destination port ranges and a protocol with a mask. A
// security group matches the peer's address, the protocol and the
// destination port only, so the conversion keeps the boxes whose source
// port range is 0:65535 and maps each to an ingress rule (protocol,
// destination port range, source prefix); the destination prefix, the
// flags and the priority have no counterpart and are dropped.
package classbench

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
)

// Box is one ClassBench rule.
type Box struct {
	Src, Dst           netip.Prefix
	SrcPorts, DstPorts [2]uint16 // low, high
	Proto, ProtoMask   uint8
}

// Parse reads a ClassBench filter set: one rule a line, tab separated,
// "@SRC/LEN DST/LEN SLO : SHI DLO : DHI PROTO/MASK FLAGS/MASK". Errors
// name the line.
func Parse(r io.Reader) ([]Box, error) {
	var boxes []Box
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		b, err := parseLine(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		boxes = append(boxes, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read classbench rules: %w", err)
	}
	return boxes, nil
}

func parseLine(s string) (Box, error) {
	var b Box
	if !strings.HasPrefix(s, "@") {
		return b, fmt.Errorf("rule does not start with @")
	}
	f := strings.Fields(s[1:])
	// SRC DST SLO : SHI DLO : DHI PROTO/MASK [FLAGS/MASK]
	if len(f) < 9 || f[3] != ":" || f[6] != ":" {
		return b, fmt.Errorf("want SRC DST SLO : SHI DLO : DHI PROTO/MASK, got %q", s)
	}
	var err error
	if b.Src, err = netip.ParsePrefix(f[0]); err != nil {
		return b, fmt.Errorf("source prefix: %w", err)
	}
	if b.Dst, err = netip.ParsePrefix(f[1]); err != nil {
		return b, fmt.Errorf("destination prefix: %w", err)
	}
	for i, idx := range [4]int{2, 4, 5, 7} {
		v, err := strconv.ParseUint(f[idx], 10, 16)
		if err != nil {
			return b, fmt.Errorf("port %q: %w", f[idx], err)
		}
		switch i {
		case 0, 1:
			b.SrcPorts[i] = uint16(v)
		default:
			b.DstPorts[i-2] = uint16(v)
		}
	}
	if b.SrcPorts[0] > b.SrcPorts[1] || b.DstPorts[0] > b.DstPorts[1] {
		return b, fmt.Errorf("inverted port range")
	}
	proto, mask, ok := strings.Cut(f[8], "/")
	if !ok {
		return b, fmt.Errorf("protocol %q: want PROTO/MASK", f[8])
	}
	p, err := strconv.ParseUint(proto, 0, 8)
	if err != nil {
		return b, fmt.Errorf("protocol %q: %w", proto, err)
	}
	m, err := strconv.ParseUint(mask, 0, 8)
	if err != nil {
		return b, fmt.Errorf("protocol mask %q: %w", mask, err)
	}
	b.Proto, b.ProtoMask = uint8(p), uint8(m)
	return b, nil
}

// rule is one converted ingress rule; equal rules are written once.
type rule struct {
	proto string
	ports string // "" for all
	from  netip.Prefix
}

// convert turns boxes into ingress rules (see the package comment). A box
// for any protocol (mask 0) with a destination port range becomes a tcp
// and a udp rule, since a security group gives ports only to those.
func convert(boxes []Box) []rule {
	var out []rule
	seen := make(map[rule]bool)
	add := func(r rule) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, b := range boxes {
		if b.SrcPorts != [2]uint16{0, 65535} {
			continue
		}
		ports := ""
		if b.DstPorts != [2]uint16{0, 65535} {
			// Port 0 is no service: a rule never names it, so a range
			// from 0 starts at 1; a box for port 0 alone is dropped.
			lo, hi := max(b.DstPorts[0], 1), b.DstPorts[1]
			if hi == 0 {
				continue
			}
			ports = strconv.Itoa(int(lo))
			if hi != lo {
				ports += "-" + strconv.Itoa(int(hi))
			}
		}
		from := b.Src.Masked()
		switch {
		case b.ProtoMask == 0 && ports == "":
			add(rule{"all", "", from})
		case b.ProtoMask == 0:
			add(rule{"tcp", ports, from})
			add(rule{"udp", ports, from})
		case b.Proto == 6:
			add(rule{"tcp", ports, from})
		case b.Proto == 17:
			add(rule{"udp", ports, from})
		default:
			add(rule{strconv.Itoa(int(b.Proto)), "", from})
		}
	}
	return out
}

// ToRulesYAML writes the boxes as a version 1 rules file with one group,
// "classbench", whose ingress list holds the converted rules and whose
// egress is omitted (all outbound allowed).
func ToRulesYAML(boxes []Box, w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# converted from a ClassBench filter set (%d boxes)\nversion: 1\ngroups:\n  - name: classbench\n    ingress:\n", len(boxes))
	rs := convert(boxes)
	if len(rs) == 0 {
		fmt.Fprint(bw, "      []\n")
	}
	for _, r := range rs {
		fmt.Fprintf(bw, "      - {proto: %s", r.proto)
		if r.ports != "" {
			fmt.Fprintf(bw, ", ports: %q", r.ports)
		}
		fmt.Fprintf(bw, ", from: [%s]}\n", r.from)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write rules: %w", err)
	}
	return nil
}

// ToFile converts the boxes through ToRulesYAML and rules.Parse, the
// path every rules file takes; name labels the file in errors.
func ToFile(name string, boxes []Box) (*rules.File, error) {
	var sb strings.Builder
	if err := ToRulesYAML(boxes, &sb); err != nil {
		return nil, err
	}
	f, err := rules.Parse(name, []byte(sb.String()), rules.Options{})
	if err != nil {
		return nil, fmt.Errorf("converted classbench rules: %w", err)
	}
	return f, nil
}
