package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/packet/packettest"
)

const replayRules = `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
    egress: []
`

// replayFixture writes the rules and a capture: a connection to 443
// (SYN, SYN-ACK, ACK), a SYN to 22 and a SYN to 80. It returns the rules
// path, the capture path and the capture's record offsets.
func replayFixture(t *testing.T) (rulesPath, capPath string, offsets []int) {
	t.Helper()
	dir := t.TempDir()
	rulesPath = filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(replayRules), 0o600); err != nil {
		t.Fatal(err)
	}
	syn, synack, ack := packet.SYN, packet.SYN|packet.ACK, packet.ACK
	frames := packettest.EthernetFrames(
		packettest.TCP("198.18.1.7", "198.18.0.1", 40000, 443, syn),
		packettest.TCP("198.18.0.1", "198.18.1.7", 443, 40000, synack),
		packettest.TCP("198.18.1.7", "198.18.0.1", 40000, 443, ack),
		packettest.TCP("198.18.1.7", "198.18.0.1", 40001, 22, syn),
		packettest.TCP("198.18.1.7", "198.18.0.1", 40002, 80, syn),
	)
	capture := packettest.Pcap(1, frames) // LINKTYPE_ETHERNET
	offsets = packettest.PcapOffsets(frames)
	capPath = filepath.Join(dir, "cap.pcap")
	if err := os.WriteFile(capPath, capture, 0o600); err != nil {
		t.Fatal(err)
	}
	return rulesPath, capPath, offsets
}

func runFwctl(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

type replayJSON struct {
	Packets   uint64 `json:"packets"`
	Accepted  uint64 `json:"accepted"`
	Dropped   uint64 `json:"dropped"`
	Transit   uint64 `json:"transit"`
	NotIP     uint64 `json:"not_ip"`
	Malformed uint64 `json:"malformed"`
	Flows     uint64 `json:"flows"`
	PPS       float64
	Reasons   map[string]uint64 `json:"reasons"`
	Files     []struct {
		Path     string `json:"path"`
		Complete bool   `json:"complete"`
		Stopped  *struct {
			Packet uint64 `json:"packet"`
			Offset int64  `json:"offset"`
		} `json:"stopped"`
	} `json:"files"`
	Diff *struct {
		Changes []struct {
			Src, Dst string
			SrcPort  uint16 `json:"sport"`
			DstPort  uint16 `json:"dport"`
			Old, New string
			Packets  uint64
			Time     time.Time
		} `json:"changes"`
	} `json:"diff"`
}

func decodeSummary(t *testing.T, s string) replayJSON {
	t.Helper()
	var v replayJSON
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, s)
	}
	return v
}

func TestReplayJSON(t *testing.T) {
	rulesPath, capPath, _ := replayFixture(t)
	// Flags after the capture are accepted too.
	code, out, errOut := runFwctl("replay", capPath, "-f", rulesPath, "--host", "198.18.0.1", "--json")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	s := decodeSummary(t, out)
	if s.Packets != 5 || s.Accepted != 4 || s.Dropped != 1 || s.Flows != 2 || s.Transit != 0 || s.NotIP != 0 || s.Malformed != 0 {
		t.Errorf("summary %+v", s)
	}
	if s.Reasons["rule"] != 2 || s.Reasons["established"] != 2 || s.Reasons["no-match"] != 1 {
		t.Errorf("reasons %v", s.Reasons)
	}
	if len(s.Files) != 1 || !s.Files[0].Complete || s.Files[0].Path != capPath {
		t.Errorf("files %+v", s.Files)
	}
	if errOut != "" {
		t.Errorf("stderr not silent when not a terminal: %q", errOut)
	}
}

func TestReplayText(t *testing.T) {
	rulesPath, capPath, _ := replayFixture(t)
	code, out, errOut := runFwctl("replay", "-f", rulesPath, capPath)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{"replayed 5 packets from 1 capture", "accepted   4", "dropped    1", "2 started", "complete"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestReplayVerdicts(t *testing.T) {
	rulesPath, capPath, _ := replayFixture(t)
	vpath := filepath.Join(t.TempDir(), "verdicts.jsonl")
	code, _, errOut := runFwctl("replay", "-f", rulesPath, "--host", "198.18.0.1", "--verdicts", vpath, capPath)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	got, err := os.ReadFile(vpath)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"n":1,"verdict":"accept","reason":"rule"}
{"n":2,"verdict":"accept","reason":"established"}
{"n":3,"verdict":"accept","reason":"established"}
{"n":4,"verdict":"drop","reason":"no-match"}
{"n":5,"verdict":"accept","reason":"rule"}
`
	if string(got) != want {
		t.Errorf("verdicts:\n%s\nwant:\n%s", got, want)
	}
}

func TestReplayTruncated(t *testing.T) {
	rulesPath, capPath, offsets := replayFixture(t)
	data, err := os.ReadFile(capPath)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, data[:offsets[3]+20], 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runFwctl("replay", "-f", rulesPath, "--json", cut)
	if code != exitIncomplete {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitIncomplete, errOut)
	}
	if !strings.Contains(errOut, "stopped at packet 4") || !strings.Contains(errOut, cut) {
		t.Errorf("stderr does not say where it stopped: %q", errOut)
	}
	s := decodeSummary(t, out)
	if s.Packets != 3 || s.Accepted != 3 {
		t.Errorf("partial counts %+v", s)
	}
	if len(s.Files) != 1 || s.Files[0].Complete || s.Files[0].Stopped == nil ||
		s.Files[0].Stopped.Packet != 4 || s.Files[0].Stopped.Offset != int64(offsets[3]) {
		t.Errorf("file stop %+v", s.Files)
	}
}

func TestReplayDiff(t *testing.T) {
	rulesPath, capPath, _ := replayFixture(t)
	other := filepath.Join(t.TempDir(), "other.yaml")
	if err := os.WriteFile(other, []byte(strings.Replace(replayRules, "[80, 443]", "[80, 22]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runFwctl("replay", "-f", rulesPath, "--host", "198.18.0.1", "--diff", other, "--json", capPath)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	s := decodeSummary(t, out)
	if s.Diff == nil || len(s.Diff.Changes) != 2 {
		t.Fatalf("diff %+v", s.Diff)
	}
	c0, c1 := s.Diff.Changes[0], s.Diff.Changes[1]
	if c0.Src != "198.18.1.7" || c0.SrcPort != 40000 || c0.DstPort != 443 || c0.Old != "accept (rule)" || c0.New != "drop (no-match)" || c0.Packets != 3 {
		t.Errorf("first change %+v", c0)
	}
	if c1.DstPort != 22 || c1.Old != "drop (no-match)" || c1.New != "accept (rule)" || c1.Packets != 1 {
		t.Errorf("second change %+v", c1)
	}
	// And in words.
	code, out, _ = runFwctl("replay", "-f", rulesPath, "--host", "198.18.0.1", "--diff", other, capPath)
	if code != exitOK || !strings.Contains(out, "2 flows change") ||
		!strings.Contains(out, "198.18.1.7:40000 -> 198.18.0.1:443") {
		t.Errorf("exit %d, text diff:\n%s", code, out)
	}
}

func TestReplayErrors(t *testing.T) {
	rulesPath, capPath, _ := replayFixture(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\ngroups:\n  - name: x\n    ingress:\n      - {proto: tcp, ports: 99999, from: [any]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notCap := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notCap, []byte("hello, this is not a capture"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		msg  string
		// summary: the summary is printed (some capture was read)
		summary bool
	}{
		{"no rules", []string{"replay", capPath}, exitUsage, "-f RULES is required", false},
		{"no capture", []string{"replay", "-f", rulesPath}, exitUsage, "no capture", false},
		{"bad host", []string{"replay", "-f", rulesPath, "--host", "nonsense", capPath}, exitUsage, "bad host address", false},
		{"unknown flag", []string{"replay", "-f", rulesPath, "--nope", capPath}, exitUsage, "nope", false},
		{"bad max-rules", []string{"replay", "-f", rulesPath, "--max-rules", "-1", capPath}, exitUsage, "--max-rules -1", false},
		{"bad rules", []string{"replay", "-f", bad, capPath}, exitRejected, "bad.yaml:5", false},
		{"missing capture", []string{"replay", "-f", rulesPath, filepath.Join(t.TempDir(), "none.pcap")}, exitRejected, "none.pcap", false},
		{"not a capture", []string{"replay", "-f", rulesPath, notCap, capPath}, exitRejected, "notes.txt", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runFwctl(tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Errorf("exit %d (want %d), stderr %q (want %q in it)", code, tt.code, errOut, tt.msg)
			}
			if got := strings.Contains(out, "replayed"); got != tt.summary {
				t.Errorf("summary printed: %v, want %v:\n%s", got, tt.summary, out)
			}
		})
	}
}

// TestReplaySharedData runs the documented command over the real
// captures when they are present.
func TestReplaySharedData(t *testing.T) {
	caps, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "data", "pcap", "*.pcap"))
	if len(caps) == 0 {
		t.Skip("../shared/data/pcap is absent: skipping the replay of real captures")
	}
	rulesPath, _, _ := replayFixture(t)
	code, out, errOut := runFwctl(append([]string{"replay", "-f", rulesPath, "--json"}, caps...)...)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	s := decodeSummary(t, out)
	if len(s.Files) != len(caps) || s.Packets < 20000 || s.Accepted+s.Dropped+s.Transit+s.NotIP != s.Packets {
		t.Errorf("summary over %d captures: %+v", len(caps), s)
	}
}
