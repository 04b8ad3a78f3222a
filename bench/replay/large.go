package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/classbench"
)

// The large-capture section (issue 15): one real capture repeated to
// about -large-mb megabytes in a temporary directory, replayed by the
// fwctl binary with the ClassBench acl1 10k table, against tcpdump with a
// three-clause filter on the same file, whole process wall times, same
// run. The rules load is timed on its own with fwctl validate.

// largeFilter is the tcpdump anchor's three-clause filter.
const largeFilter = "tcp and dst portrange 1-1024 and src net 10.0.0.0/8"

// largeSource is the real capture that is repeated by default.
const largeSource = "pcapplusplus-example.pcap"

// largeResult is the large section's measurements (best of largeRuns).
type largeResult struct {
	capture         string
	bytes           int64
	packets         uint64
	rules           string
	tcpdump, replay time.Duration
	validate        time.Duration
	replayOut       string // fwctl replay's summary, from the last run
}

const largeRuns = 5

// runLarge builds fwctl, writes the capture and the rules into a
// temporary directory, and times the three commands in turn.
func runLarge(data, from string, mb int) (largeResult, error) {
	var res largeResult
	dir, err := os.MkdirTemp("", "fwd-bench-large-")
	if err != nil {
		return res, fmt.Errorf("large: %w", err)
	}
	defer os.RemoveAll(dir)
	fwctl := filepath.Join(dir, "fwctl")
	if out, err := exec.Command("go", "build", "-o", fwctl, "./cmd/fwctl").CombinedOutput(); err != nil {
		return res, fmt.Errorf("large: build fwctl: %w: %s", err, out)
	}
	src, err := os.ReadFile(filepath.Join(data, "pcap", from))
	if err != nil {
		return res, fmt.Errorf("large: %w", err)
	}
	capPath := filepath.Join(dir, "large.pcap")
	res.packets, res.bytes, err = repeatCapture(src, int64(mb)<<20, capPath)
	if err != nil {
		return res, err
	}
	res.capture = fmt.Sprintf("%s repeated to %d MB", from, res.bytes>>20)
	rulesPath := filepath.Join(dir, "acl1_10k.yaml")
	n, err := writeClassbenchYAML(filepath.Join(data, "classbench", "acl1_10k"), rulesPath)
	if err != nil {
		return res, err
	}
	res.rules = fmt.Sprintf("ClassBench acl1_10k (%d rules)", n)
	cmds := []struct {
		d    *time.Duration
		args []string
	}{
		{&res.tcpdump, []string{"tcpdump", "-r", capPath, "-w", "/dev/null", largeFilter}},
		{&res.replay, []string{fwctl, "replay", "-f", rulesPath, capPath}},
		{&res.validate, []string{fwctl, "validate", rulesPath}},
	}
	for run := range largeRuns + 1 {
		for _, c := range cmds {
			var out bytes.Buffer
			cmd := exec.Command(c.args[0], c.args[1:]...)
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			d := time.Since(start)
			if err != nil {
				return res, fmt.Errorf("large: %s: %w: %s", strings.Join(c.args, " "), err, out.String())
			}
			if run == 0 {
				continue // a warm-up round: the file was just written
			}
			if *c.d == 0 || d < *c.d {
				*c.d = d
			}
			if c.args[1] == "replay" {
				res.replayOut = out.String()
			}
		}
	}
	return res, nil
}

// writeClassbenchYAML converts a ClassBench set to a rules file at dst
// and returns its rule count.
func writeClassbenchYAML(src, dst string) (int, error) {
	fh, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("large: %w", err)
	}
	defer fh.Close()
	boxes, err := classbench.Parse(fh)
	if err != nil {
		return 0, fmt.Errorf("large: %s: %w", src, err)
	}
	var b bytes.Buffer
	if err := classbench.ToRulesYAML(boxes, &b); err != nil {
		return 0, err
	}
	if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
		return 0, fmt.Errorf("large: %w", err)
	}
	return bytes.Count(b.Bytes(), []byte("\n      - {")), nil
}

// repeatCapture writes a classic pcap at dst holding src's records over
// and over until the file reaches size bytes; each repetition's
// timestamps follow the previous one's (shifted by the capture's span
// plus one second), so flows and timeouts see a longer capture, not time
// going back.
func repeatCapture(src []byte, size int64, dst string) (packets uint64, written int64, err error) {
	if len(src) < 24 {
		return 0, 0, fmt.Errorf("large: capture too short")
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(src[0:4]) {
	case 0xA1B2C3D4, 0xA1B23C4D:
		bo = binary.LittleEndian
	case 0xD4C3B2A1, 0x4D3CB2A1:
		bo = binary.BigEndian
	default:
		return 0, 0, fmt.Errorf("large: not a classic pcap")
	}
	recs := src[24:]
	var first, last uint32
	for off, i := 0, 0; off+16 <= len(recs); i++ {
		sec := bo.Uint32(recs[off:])
		if i == 0 {
			first = sec
		}
		last = sec
		off += 16 + int(bo.Uint32(recs[off+8:]))
	}
	span := last - first + 1
	fh, err := os.Create(dst)
	if err != nil {
		return 0, 0, fmt.Errorf("large: %w", err)
	}
	w := bufio.NewWriterSize(fh, 1<<20)
	w.Write(src[:24])
	written = 24
	buf := make([]byte, len(recs))
	for rep := uint32(0); written < size; rep++ {
		copy(buf, recs)
		for off := 0; off+16 <= len(buf); {
			bo.PutUint32(buf[off:], bo.Uint32(buf[off:])+rep*span)
			off += 16 + int(bo.Uint32(buf[off+8:]))
			packets++
		}
		w.Write(buf)
		written += int64(len(buf))
	}
	if err := w.Flush(); err != nil {
		fh.Close()
		return 0, 0, fmt.Errorf("large: %w", err)
	}
	if err := fh.Close(); err != nil {
		return 0, 0, fmt.Errorf("large: %w", err)
	}
	return packets, written, nil
}

// largeReport is the large section of the report.
func largeReport(r largeResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Large capture: fwctl replay against tcpdump, whole process (issue 15)\n\n")
	fmt.Fprintf(&b, "%s: %d packets, %d bytes, written to a temporary directory. Rules: %s. "+
		"Best of %d wall times each after a warm-up round, the three commands taking turns. tcpdump: `tcpdump -r FILE -w /dev/null '%s'`. "+
		"fwctl replay includes loading the rules; fwctl validate is that load alone.\n\n",
		r.capture, r.packets, r.bytes, r.rules, largeRuns, largeFilter)
	fmt.Fprintf(&b, "| command | wall ms | packets/s | vs tcpdump |\n|---|---:|---:|---:|\n")
	row := func(name string, d time.Duration, pkts bool) {
		pps := "-"
		if pkts {
			pps = fmt.Sprintf("%.2fM", float64(r.packets)/d.Seconds()/1e6)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.2f× |\n", name, float64(d.Microseconds())/1e3, pps,
			d.Seconds()/r.tcpdump.Seconds())
	}
	row("tcpdump -r (three-clause filter)", r.tcpdump, true)
	row("fwctl replay -f acl1_10k.yaml", r.replay, true)
	row("fwctl validate acl1_10k.yaml", r.validate, false)
	fmt.Fprintf(&b, "\nfwctl replay printed:\n\n```\n%s```\n", r.replayOut)
	return b.String()
}
