package classbench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
)

const sample = "@198.18.1.0/24\t198.18.0.1/32\t0 : 65535\t1550 : 1550\t0x06/0xFF\t0x0000/0x0200\t\n" +
	"@198.18.2.0/24\t198.18.0.1/32\t0 : 65535\t1550 : 1550\t0x06/0xFF\t0x0000/0x0200\t\n" +
	"@198.18.2.0/24\t198.18.0.9/32\t0 : 65535\t1550 : 1550\t0x06/0xFF\t0x1000/0x1000\t\n" + // same box once dst is dropped
	"@198.18.3.7/24\t0.0.0.0/0\t0 : 65535\t53 : 53\t0x11/0xFF\t0x0000/0x0000\t\n" + // host bits: masked
	"@198.18.4.0/24\t0.0.0.0/0\t1024 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000\t\n" + // source ports: dropped
	"@0.0.0.0/0\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x00/0x00\t0x0000/0x0000\t\n" +
	"@198.18.5.0/24\t0.0.0.0/0\t0 : 65535\t6000 : 6007\t0x00/0x00\t0x0000/0x0000\t\n" +
	"@198.18.6.0/24\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x2F/0xFF\t0x0000/0x0000\t\n" +
	"@198.18.7.0/24\t0.0.0.0/0\t0 : 65535\t0 : 1023\t0x06/0xFF\t0x0000/0x0000\t\n" + // port 0 is no service: from 1
	"@198.18.8.0/24\t0.0.0.0/0\t0 : 65535\t0 : 0\t0x11/0xFF\t0x0000/0x0000\t\n" // port 0 alone: dropped

func TestToRulesYAML(t *testing.T) {
	boxes, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(boxes) != 10 {
		t.Fatalf("%d boxes, want 10", len(boxes))
	}
	var sb strings.Builder
	if err := ToRulesYAML(boxes, &sb); err != nil {
		t.Fatal(err)
	}
	want := `      - {proto: tcp, ports: "1550", from: [198.18.1.0/24]}
      - {proto: tcp, ports: "1550", from: [198.18.2.0/24]}
      - {proto: udp, ports: "53", from: [198.18.3.0/24]}
      - {proto: all, from: [0.0.0.0/0]}
      - {proto: tcp, ports: "6000-6007", from: [198.18.5.0/24]}
      - {proto: udp, ports: "6000-6007", from: [198.18.5.0/24]}
      - {proto: 47, from: [198.18.6.0/24]}
      - {proto: tcp, ports: "1-1023", from: [198.18.7.0/24]}
`
	if got := sb.String(); !strings.HasSuffix(got, "    ingress:\n"+want) {
		t.Errorf("rules:\n%s\nwant the ingress list:\n%s", got, want)
	}
	f, err := ToFile("sample", boxes)
	if err != nil {
		t.Fatalf("to file: %v", err)
	}
	if n := f.NumRules(); n != 8 {
		t.Errorf("%d rules, want 8", n)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"198.18.1.0/24\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x06/0xFF\t0x0/0x0\n", // no @
		"@198.18.1.0/33\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x06/0xFF\t0x0/0x0\n",
		"@198.18.1.0/24\t0.0.0.0/0\t0 : 65536\t0 : 65535\t0x06/0xFF\t0x0/0x0\n",
		"@198.18.1.0/24\t0.0.0.0/0\t9 : 1\t0 : 65535\t0x06/0xFF\t0x0/0x0\n",
		"@198.18.1.0/24\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x06\t0x0/0x0\n",
		"@198.18.1.0/24\t0.0.0.0/0\t0 : 65535\n",
	} {
		if _, err := Parse(strings.NewReader("\n" + in)); err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
			t.Errorf("Parse(%q) = %v, want an error on line 2", in, err)
		}
	}
}

// TestRealSets converts the ClassBench sets in ../shared/data when present.
func TestRealSets(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "data", "classbench")
	for _, tc := range []struct {
		name     string
		min, max int
	}{{"acl1_1k", 500, 1000}, {"acl1_10k", 8000, 10000}} {
		t.Run(tc.name, func(t *testing.T) {
			fh, err := os.Open(filepath.Join(dir, tc.name))
			if err != nil {
				t.Skipf("%s is absent (../shared/data): %v", tc.name, err)
			}
			defer fh.Close()
			boxes, err := Parse(fh)
			if err != nil {
				t.Fatal(err)
			}
			f, err := ToFile(tc.name, boxes)
			if err != nil {
				t.Fatal(err)
			}
			if n := f.NumRules(); n < tc.min || n > tc.max {
				t.Errorf("%d rules from %d boxes, want %d..%d", n, len(boxes), tc.min, tc.max)
			}
			if _, err := filter.Compile(f); err != nil {
				t.Fatalf("compile: %v", err)
			}
		})
	}
}
