// Command replay is the pcap-replay benchmark: it replays captures held in
// memory (Replayer.ReplayBytes) through decode, flow table and a compiled
// rule table with internal/replay, on one core, for rule tables of 10, 1k
// and 10k rules (the large ones converted from ClassBench acl1 sets), and
// the last table again through the io.Reader path (pcapgo reading every
// record, as fwctl replay reads files); it times tcpdump filtering the
// same files with a BPF expression built from the same rules as an
// outside anchor, and writes a Markdown report and an SVG chart.
//
//	go run ./bench/replay [-data ../shared/data] [-capture FILE]... [-rules FILE]
//
// The same measurements run as `go test -bench . ./bench/replay`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/classbench"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/replay"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// tenRules is the small table: a web host with a few management rules.
const tenRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: tcp, ports: 22, from: [10.0.0.0/8, 192.168.0.0/16]}
      - {proto: tcp, ports: 8080-8090, from: [172.16.0.0/12]}
      - {proto: udp, ports: 53, from: [10.0.0.0/8]}
      - {proto: udp, ports: 123, from: [any]}
      - {proto: tcp, ports: 5432, from: [10.1.0.0/16]}
      - {proto: tcp, ports: 6379, from: [10.2.0.0/16]}
      - {proto: udp, ports: 5000-5100, from: [192.168.1.0/24]}
      - {proto: icmp, icmp: {type: 8}, from: [any]}
      - {proto: icmpv6, icmp: {type: 128}, from: [any]}
`

// capture is one capture file loaded in memory.
type capture struct {
	name    string
	data    []byte
	path    string
	packets uint64
}

// ruleSet is one table to benchmark.
type ruleSet struct {
	name  string
	file  *rules.File
	table *filter.Table
	bpf   string // tcpdump expression of the same reach
}

// result is one measurement.
type result struct {
	capture, rules string
	packets        uint64
	nsPerPacket    float64
	allocsPerPkt   float64
	pps            float64
	tcpdumpPPS     float64 // 0 when tcpdump did not run
	tcpdumpSecs    float64
}

type config struct {
	data     string
	captures []string
	rules    string
	report   string
	svg      string
	tcpdump  bool
	benchFor time.Duration
	note     string
	largeMB  int  // the large-capture section's size, 0: skip it
	onlyBig  bool // only the large-capture section
	bigFrom  string
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var c config
	var caps multi
	flag.StringVar(&c.data, "data", filepath.Join("..", "shared", "data"), "directory with pcap/ and classbench/")
	flag.Var(&caps, "capture", "another capture `FILE` to replay (repeatable)")
	flag.StringVar(&c.rules, "rules", "", "another rules `FILE` to benchmark")
	flag.StringVar(&c.report, "report", filepath.Join("bench", "out", "RESULTS-replay.md"), "Markdown report to write (bench/replay/RESULTS-replay.md is the committed copy: make bench-results)")
	flag.StringVar(&c.svg, "svg", filepath.Join("bench", "out", "results.svg"), "SVG chart to write (bench/results.svg is the committed copy)")
	flag.BoolVar(&c.tcpdump, "tcpdump", true, "time tcpdump on the same files")
	flag.DurationVar(&c.benchFor, "benchtime", time.Second, "time per measurement")
	flag.StringVar(&c.note, "note", "", "a paragraph to add to the report (how the run was made)")
	flag.IntVar(&c.largeMB, "large-mb", 900, "size in `MB` of the repeated capture fwctl replay and tcpdump read (0: skip that section)")
	flag.StringVar(&c.bigFrom, "large-from", largeSource, "the capture in DATA/pcap the large section repeats")
	flag.BoolVar(&c.onlyBig, "large-only", false, "run only the large-capture section and print its report")
	flag.Parse()
	c.captures = caps
	if err := run(c); err != nil {
		fmt.Fprintf(os.Stderr, "bench/replay: %v\n", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if c.onlyBig {
		res, err := runLarge(c.data, c.bigFrom, c.largeMB)
		if err != nil {
			return err
		}
		fmt.Print(largeReport(res))
		return nil
	}
	caps, err := loadCaptures(c.data, c.captures)
	if err != nil {
		return err
	}
	sets, err := loadRuleSets(c.data, c.rules)
	if err != nil {
		return err
	}
	runtime.GOMAXPROCS(1)
	testing.Init()
	if err := flag.Set("test.benchtime", c.benchFor.String()); err != nil {
		return fmt.Errorf("set benchtime: %w", err)
	}
	var results []result
	show := func(res result) {
		fmt.Fprintf(os.Stderr, "%-10s %-32s %7d pkts %8.1f ns/pkt %6.2f Mpps %.4f allocs/pkt  tcpdump %6.2f Mpps\n",
			res.rules, res.capture, res.packets, res.nsPerPacket, res.pps/1e6, res.allocsPerPkt, res.tcpdumpPPS/1e6)
	}
	for _, s := range sets {
		for _, cp := range caps {
			res := measure(cp, s, inPlace)
			if c.tcpdump {
				secs, err := timeTcpdump(cp.path, s.bpf)
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench/replay: tcpdump on %s: %v\n", cp.name, err)
				} else {
					res.tcpdumpSecs = secs
					res.tcpdumpPPS = float64(cp.packets) / secs
				}
			}
			show(res)
			results = append(results, res)
		}
	}
	// The last table again, read through pcapgo, against the same tcpdump
	// runs.
	last := sets[len(sets)-1]
	viaReader := ruleSet{name: last.name + " via io.Reader", file: last.file, table: last.table, bpf: last.bpf}
	anchors := results[len(results)-len(caps):]
	for i, cp := range caps {
		res := measure(cp, last, throughReader)
		res.rules = viaReader.name
		td := anchors[i]
		res.tcpdumpSecs, res.tcpdumpPPS = td.tcpdumpSecs, td.tcpdumpPPS
		show(res)
		results = append(results, res)
	}
	sets = append(sets, viaReader)
	for _, p := range []string{c.report, c.svg} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	link, err := filepath.Rel(filepath.Dir(c.report), c.svg)
	if err != nil {
		link = c.svg
	}
	text := report(results, sets, caps, c.note, filepath.ToSlash(link))
	if c.largeMB > 0 {
		res, err := runLarge(c.data, c.bigFrom, c.largeMB)
		if err != nil {
			return err
		}
		fmt.Fprint(os.Stderr, largeReport(res))
		text += "\n" + largeReport(res)
	}
	if err := os.WriteFile(c.report, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(c.svg, []byte(chart(results, sets, last.name)), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", c.report, c.svg)
	return nil
}

func loadCaptures(data string, extra []string) ([]capture, error) {
	paths, _ := filepath.Glob(filepath.Join(data, "pcap", "*.pcap*"))
	paths = append(paths, extra...)
	if len(paths) == 0 {
		return nil, fmt.Errorf("no captures: %s/pcap is absent and no -capture given", data)
	}
	var caps []capture
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read capture: %w", err)
		}
		cp := capture{name: filepath.Base(p), data: b, path: p}
		r := replay.New(&filter.Table{}, replay.Options{})
		if err := r.ReplayBytes(cp.name, b); err != nil {
			return nil, fmt.Errorf("replay %s: %w", p, err)
		}
		cp.packets = r.Summary().Packets
		caps = append(caps, cp)
	}
	return caps, nil
}

func loadRuleSets(data, extra string) ([]ruleSet, error) {
	small, err := rules.Parse("ten-rules.yaml", []byte(tenRules), rules.Options{})
	if err != nil {
		return nil, fmt.Errorf("ten rules: %w", err)
	}
	files := []*rules.File{small}
	names := []string{"10 rules"}
	for _, cb := range []struct{ file, name string }{{"acl1_1k", "acl1 1k"}, {"acl1_10k", "acl1 10k"}} {
		f, err := classbenchFile(filepath.Join(data, "classbench", cb.file))
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench/replay: skipping %s: %v\n", cb.name, err)
			continue
		}
		files = append(files, f)
		names = append(names, cb.name)
	}
	var sets []ruleSet
	for i, f := range files {
		t, err := filter.Compile(f)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", names[i], err)
		}
		sets = append(sets, ruleSet{name: fmt.Sprintf("%s (%d)", names[i], f.NumRules()), file: f, table: t, bpf: bpfExpr(f)})
	}
	if extra != "" {
		// A user's rules file: read and compiled as fwd and fwctl do.
		t, err := lifecycle.Compile(extra, rules.Options{})
		if err != nil {
			return nil, err
		}
		f := t.File()
		sets = append(sets, ruleSet{name: fmt.Sprintf("%s (%d)", filepath.Base(extra), f.NumRules()), file: f, table: t, bpf: bpfExpr(f)})
	}
	return sets, nil
}

// classbenchFile converts a ClassBench filter set (see internal/classbench).
func classbenchFile(path string) (*rules.File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	boxes, err := classbench.Parse(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return classbench.ToFile(filepath.Base(path), boxes)
}

// How measure reads the capture.
type readPath bool

const (
	inPlace       readPath = true  // ReplayBytes: records sliced out of the bytes
	throughReader readPath = false // Replay over a bytes.Reader: pcapgo copies each record
)

// measure replays one in-memory capture with one table in a loop, on
// the calling goroutine (GOMAXPROCS 1), and reports per-packet figures.
// One Replayer serves every iteration, as a long replay would; each
// iteration starts a new capture (empty flow table, new reader).
func measure(cp capture, s ruleSet, how readPath) result {
	r := replay.New(s.table, replay.Options{})
	br := bytes.NewReader(cp.data)
	br2 := *br
	var failed error
	b := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if how == inPlace {
				err = r.ReplayBytes(cp.name, cp.data)
			} else {
				*br = br2
				err = r.Replay(cp.name, br)
			}
			if err != nil {
				failed = err
			}
		}
	})
	if failed != nil {
		fmt.Fprintf(os.Stderr, "bench/replay: %s: %v\n", cp.name, failed)
	}
	ns := float64(b.NsPerOp()) / float64(cp.packets)
	return result{
		capture: cp.name, rules: s.name, packets: cp.packets,
		nsPerPacket:  ns,
		pps:          1e9 / ns,
		allocsPerPkt: float64(b.AllocsPerOp()) / float64(cp.packets),
	}
}

// bpfExpr is a tcpdump filter with the reach of the file's ingress
// rules: one alternative per rule (protocol, destination ports, source
// prefix), IPv4 and IPv6 alike.
func bpfExpr(f *rules.File) string {
	var alts []string
	for _, g := range f.Groups {
		for i := range g.Ingress {
			r := &g.Ingress[i]
			var parts []string
			switch {
			case r.Proto.All:
			case r.Proto.Num == ipproto.TCP:
				parts = append(parts, "tcp")
			case r.Proto.Num == ipproto.UDP:
				parts = append(parts, "udp")
			case r.Proto.Num == ipproto.ICMP:
				parts = append(parts, "icmp")
			case r.Proto.Num == ipproto.ICMPv6:
				parts = append(parts, "icmp6")
			default:
				parts = append(parts, fmt.Sprintf("ip proto %d", r.Proto.Num))
			}
			if r.Proto.HasPorts() && len(r.Ports) > 0 {
				var ps []string
				for _, pr := range r.Ports {
					ps = append(ps, fmt.Sprintf("dst portrange %d-%d", pr.Lo, pr.Hi))
				}
				parts = append(parts, "("+strings.Join(ps, " or ")+")")
			}
			var srcs []string
			for _, p := range r.Prefixes {
				if p.Bits() == 0 {
					srcs = nil
					break
				}
				srcs = append(srcs, "src net "+p.String())
			}
			if len(srcs) > 0 {
				parts = append(parts, "("+strings.Join(srcs, " or ")+")")
			}
			if len(parts) == 0 {
				return "" // a rule that allows everything
			}
			alts = append(alts, "("+strings.Join(parts, " and ")+")")
		}
	}
	return strings.Join(alts, " or ")
}

// timeTcpdump runs tcpdump -r FILE -w /dev/null EXPR three times and
// returns the best wall time in seconds.
func timeTcpdump(path, expr string) (float64, error) {
	bin, err := exec.LookPath("tcpdump")
	if err != nil {
		return 0, fmt.Errorf("tcpdump not installed (make bench installs it)")
	}
	best := 0.0
	for range 3 {
		cmd := exec.Command(bin, "-r", path, "-w", "/dev/null", expr)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
		}
		if d := time.Since(start).Seconds(); best == 0 || d < best {
			best = d
		}
	}
	return best, nil
}
