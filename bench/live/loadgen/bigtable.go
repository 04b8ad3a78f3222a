package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/classbench"
)

// bigNet is where the large table's source prefixes are mapped: the
// upper half of the benchmark range, away from the hosts' own addresses
// (198.18.0.0/16), so that the flood never forges one of them.
var bigNet = netip.MustParsePrefix("198.19.0.0/16")

// nftChunk is how many elements one "add element" command carries.
const nftChunk = 256

// bigRule is a converted rule with its source mapped into bigNet, and the
// box it covers: source addresses, protocols and destination ports.
type bigRule struct {
	classbench.Rule
	addr  [2]uint32
	proto [2]uint16
	port  [2]uint16
}

// mapPrefix maps a ClassBench source prefix into bigNet, the same for
// every variant: the low 16 bits of the address are kept, a prefix
// shorter than /16 becomes bigNet itself. A /24 or longer keeps its
// structure (nested stays nested, disjoint /24s in one /16 stay
// disjoint); distinct prefixes that differ only in their top 16 bits
// become one (the duplicates are removed after mapping).
func mapPrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("source %v: not IPv4", p)
	}
	a := p.Addr().As4()
	base := bigNet.Addr().As4()
	m := netip.AddrFrom4([4]byte{base[0], base[1], a[2], a[3]})
	return netip.PrefixFrom(m, max(p.Bits(), bigNet.Bits())).Masked(), nil
}

// newBigRule maps r and computes its box.
func newBigRule(r classbench.Rule) (bigRule, error) {
	from, err := mapPrefix(r.From)
	if err != nil {
		return bigRule{}, err
	}
	r.From = from
	b := bigRule{Rule: r, port: [2]uint16{0, 65535}}
	a := from.Addr().As4()
	lo := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	b.addr = [2]uint32{lo, lo | (1<<(32-from.Bits()) - 1)}
	switch r.Proto {
	case "all":
		b.proto = [2]uint16{0, 255}
	case "tcp":
		b.proto = [2]uint16{6, 6}
	case "udp":
		b.proto = [2]uint16{17, 17}
	default:
		n, err := strconv.ParseUint(r.Proto, 10, 8)
		if err != nil {
			return bigRule{}, fmt.Errorf("protocol %q: %w", r.Proto, err)
		}
		b.proto = [2]uint16{uint16(n), uint16(n)}
	}
	if r.Ports != "" {
		lo, hi, ok := strings.Cut(r.Ports, "-")
		if !ok {
			hi = lo
		}
		l, err1 := strconv.ParseUint(lo, 10, 16)
		h, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil {
			return bigRule{}, fmt.Errorf("ports %q: not LO-HI", r.Ports)
		}
		b.port = [2]uint16{uint16(l), uint16(h)}
	}
	return b, nil
}

func overlap[T uint16 | uint32](a, b [2]T) bool { return a[0] <= b[1] && b[0] <= a[1] }

// overlaps reports whether two boxes share a packet.
func (b bigRule) overlaps(o bigRule) bool {
	return overlap(b.addr, o.addr) && overlap(b.proto, o.proto) && overlap(b.port, o.port)
}

// bigTable converts ClassBench file in into the large-table variants in
// dir (see the package comment) and prints what it kept.
func bigTable(in, dir string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	boxes, err := classbench.Parse(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	converted := classbench.Rules(boxes)
	var rs []bigRule
	seen := make(map[classbench.Rule]bool)
	for _, r := range converted {
		b, err := newBigRule(r)
		if err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		if !seen[b.Rule] {
			seen[b.Rule] = true
			rs = append(rs, b)
		}
	}
	if len(rs) == 0 {
		return fmt.Errorf("%s: no rule converts", in)
	}
	// An interval set refuses an element that overlaps one it holds:
	// the first of two that overlap is kept.
	var kept []bigRule
	for _, r := range rs {
		ok := true
		for _, k := range kept {
			if r.overlaps(k) {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, r)
		}
	}
	var targets []bigRule
	for _, k := range kept {
		if k.Proto == "tcp" || k.Proto == "udp" || k.Proto == "all" {
			targets = append(targets, k)
		}
	}
	if len(targets) == 0 {
		return fmt.Errorf("%s: no tcp or udp rule left to send traffic to", in)
	}
	files := []struct {
		name  string
		write func(*bufio.Writer)
	}{
		{"large.yaml", func(w *bufio.Writer) { writeRulesYAML(w, in, rs) }},
		{"one.yaml", func(w *bufio.Writer) {
			writeRulesYAML(w, "one rule", []bigRule{{Rule: classbench.Rule{Proto: "all", From: bigNet}}})
		}},
		{"iptables.rules", func(w *bufio.Writer) { writeIptables(w, rs) }},
		{"nft.rules", func(w *bufio.Writer) { writeNft(w, kept) }},
		{"targets.txt", func(w *bufio.Writer) { writeTargets(w, targets) }},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.write); err != nil {
			return err
		}
	}
	fmt.Printf("bigtable file=%s boxes=%d converted=%d rules=%d nft_kept=%d nft_overlapping=%d targets=%d\n",
		filepath.Base(in), len(boxes), len(converted), len(rs), len(kept), len(rs)-len(kept), len(targets))
	return nil
}

func writeFile(name string, write func(*bufio.Writer)) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	write(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

func writeRulesYAML(w *bufio.Writer, from string, rs []bigRule) {
	fmt.Fprintf(w, "# %s, sources mapped into %v (bench/live/loadgen bigtable)\nversion: 1\ngroups:\n  - name: bench\n    ingress:\n", from, bigNet)
	for _, r := range rs {
		fmt.Fprintf(w, "      - {proto: %s", r.Proto)
		if r.Ports != "" {
			fmt.Fprintf(w, ", ports: %q", r.Ports)
		}
		fmt.Fprintf(w, ", from: [%s]}\n", r.From)
	}
}

// writeIptables writes one iptables rule per rule, in order, in the
// chain BENCH-INPUT, after the same stateful head as the small table's.
func writeIptables(w *bufio.Writer, rs []bigRule) {
	w.WriteString("*filter\n:BENCH-INPUT - [0:0]\n-A INPUT -j BENCH-INPUT\n-A BENCH-INPUT -i lo -j ACCEPT\n" +
		"-A BENCH-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n" +
		"-A BENCH-INPUT -m conntrack --ctstate INVALID -j DROP\n")
	for _, r := range rs {
		fmt.Fprintf(w, "-A BENCH-INPUT -s %s", r.From)
		if r.Proto != "all" {
			fmt.Fprintf(w, " -p %s", r.Proto)
		}
		if r.Ports != "" {
			fmt.Fprintf(w, " --dport %s", strings.Replace(r.Ports, "-", ":", 1))
		}
		w.WriteString(" -j ACCEPT\n")
	}
	w.WriteString("-A BENCH-INPUT -j DROP\nCOMMIT\n")
}

// writeNft writes the table with one interval set keyed by
// ip saddr . meta l4proto . th dport, and its elements in chunks.
func writeNft(w *bufio.Writer, kept []bigRule) {
	w.WriteString(`table ip fwdbench {
	set allow {
		type ipv4_addr . inet_proto . inet_service
		flags interval
	}
	chain input {
		type filter hook input priority filter; policy drop;
		iifname "lo" accept
		ct state established,related accept
		ct state invalid drop
		ip saddr . meta l4proto . th dport @allow accept
	}
}
`)
	span := func(r [2]uint16) string {
		if r[0] == r[1] {
			return strconv.Itoa(int(r[0]))
		}
		return fmt.Sprintf("%d-%d", r[0], r[1])
	}
	for i := 0; i < len(kept); i += nftChunk {
		w.WriteString("add element ip fwdbench allow {")
		for j, r := range kept[i:min(i+nftChunk, len(kept))] {
			if j > 0 {
				w.WriteString(",")
			}
			fmt.Fprintf(w, " %s . %s . %s", r.From, span(r.proto), span(r.port))
		}
		w.WriteString(" }\n")
	}
}

// writeTargets writes the flood's targets, one a line: tcp or udp (a rule
// for every protocol gets udp), the source prefix, the destination port
// range.
func writeTargets(w *bufio.Writer, ts []bigRule) {
	for _, t := range ts {
		proto := t.Proto
		if proto == "all" {
			proto = "udp"
		}
		fmt.Fprintf(w, "%s %s %d %d\n", proto, t.From, t.port[0], t.port[1])
	}
}
