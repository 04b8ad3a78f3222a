package flowlog

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/flowlog/flowlogtest"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

func rec(accept bool, proto ipproto.Proto, src string, sport uint16, dst string, dport uint16, length int) Record {
	return Record{Time: time.Unix(1700000000, 5e8), Accept: accept, Proto: proto,
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport, Length: length}
}

// TestLineReadByAWSParser: every line fwd writes is a valid AWS version 2
// record, read back with the fields it was written from.
func TestLineReadByAWSParser(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Record
		want string
	}{
		{"tcp accept", rec(true, ipproto.TCP, "198.18.0.2", 40000, "198.18.0.1", 443, 60),
			"2 - - 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 ACCEPT OK"},
		{"udp reject over ipv6", rec(false, ipproto.UDP, "2001:db8::2", 5353, "2001:db8::1", 53, 48),
			"2 - - 2001:db8::2 2001:db8::1 5353 53 17 1 48 1700000000 1700000000 REJECT OK"},
		{"icmp has port 0", rec(true, ipproto.ICMP, "198.18.0.2", 0, "198.18.0.1", 0, 84),
			"2 - - 198.18.0.2 198.18.0.1 0 0 1 1 84 1700000000 1700000000 ACCEPT OK"},
		{"icmpv6", rec(false, ipproto.ICMPv6, "2001:db8::2", 0, "2001:db8::1", 0, 104),
			"2 - - 2001:db8::2 2001:db8::1 0 0 58 1 104 1700000000 1700000000 REJECT OK"},
		{"egress from the host", rec(false, ipproto.TCP, "198.18.0.1", 51000, "198.18.1.9", 9000, 60),
			"2 - - 198.18.0.1 198.18.1.9 51000 9000 6 1 60 1700000000 1700000000 REJECT OK"},
		{"length unknown", rec(true, 47, "198.18.0.2", 0, "198.18.0.1", 0, 0),
			"2 - - 198.18.0.2 198.18.0.1 0 0 47 - - 1700000000 1700000000 ACCEPT OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendLine(nil, tc.r)
			line, ok := strings.CutSuffix(string(b), "\n")
			if !ok || strings.Contains(line, "\n") {
				t.Fatalf("%q is not one line", b)
			}
			if line != tc.want {
				t.Errorf("line\n %s\nwant\n %s", line, tc.want)
			}
			l, err := flowlogtest.Parse(line)
			if err != nil {
				t.Fatalf("AWS reader: %v", err)
			}
			r := tc.r
			want := flowlogtest.Line{Version: 2, Account: "-", Interface: "-", Src: r.Src, Dst: r.Dst,
				SrcPort: int(r.SrcPort), DstPort: int(r.DstPort), HasPorts: true, Protocol: int(r.Proto), HasProtocol: true,
				Start: r.Time.Unix(), End: r.Time.Unix(), Action: map[bool]string{true: "ACCEPT", false: "REJECT"}[r.Accept], Status: "OK"}
			if r.Length > 0 {
				want.Packets, want.Bytes, want.HasPackets, want.HasBytes = 1, int64(r.Length), true, true
			}
			if l != want {
				t.Errorf("read back\n %+v\nwant\n %+v", l, want)
			}
		})
	}
}

func TestSkipDataReadByAWSParser(t *testing.T) {
	start, end := time.Unix(1700000000, 0), time.Unix(1700000003, 9e8)
	b := AppendSkipData(nil, 1234, start, end)
	l, err := flowlogtest.Parse(strings.TrimSuffix(string(b), "\n"))
	if err != nil {
		t.Fatalf("AWS reader: %v (%q)", err, b)
	}
	if l.Status != "SKIPDATA" || l.Action != "-" || l.Src.IsValid() || l.HasPorts || l.HasProtocol {
		t.Errorf("SKIPDATA line read as %+v", l)
	}
	if !l.HasPackets || l.Packets != 1234 || l.HasBytes {
		t.Errorf("skipped count read as packets=%d (%v) bytes %v, want 1234 and -", l.Packets, l.HasPackets, l.HasBytes)
	}
	if l.Start != 1700000000 || l.End != 1700000003 {
		t.Errorf("window %d-%d, want 1700000000-1700000003", l.Start, l.End)
	}
}

// TestParserRefuses: the reader is strict, so that the tests above mean
// something.
func TestParserRefuses(t *testing.T) {
	good := "2 - - 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 ACCEPT OK"
	if _, err := flowlogtest.Parse(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"3 - - 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 ACCEPT OK",
		"2 acct - 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 ACCEPT OK",
		"2 - eth0 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 ACCEPT OK",
		"2 - - 198.18.0.300 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 ACCEPT OK",
		"2 - - 198.18.0.2 198.18.0.1 40000 70000 6 1 60 1700000000 1700000000 ACCEPT OK",
		"2 - - 198.18.0.2 198.18.0.1 40000 443 tcp 1 60 1700000000 1700000000 ACCEPT OK",
		"2 - - 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000001 1700000000 ACCEPT OK",
		"2 - - 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 accept OK",
		"2 - - 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 ACCEPT",
		"2 - - 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 ACCEPT DONE",
		"2 - - 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 ACCEPT SKIPDATA",
		"2  - 198.18.0.2 198.18.0.1 40000 443 6 1 60 1700000000 1700000000 ACCEPT OK",
	} {
		if _, err := flowlogtest.Parse(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestAppendLineAllocs: formatting into a buffer with room allocates
// nothing (the writer reuses one).
func TestAppendLineAllocs(t *testing.T) {
	r := rec(true, ipproto.TCP, "2001:db8::2", 40000, "2001:db8::1", 443, 80)
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendLine(buf[:0], r) }); n != 0 {
		t.Errorf("%v allocs per line, want 0", n)
	}
}
