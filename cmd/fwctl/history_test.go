package main

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/suggest"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

var goldenTime = time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)

// goldenHistory is a change history for the golden daemon, its clock
// fixed.
func goldenHistory(t *testing.T, rulesPath string) *lifecycle.History {
	t.Helper()
	h, err := lifecycle.OpenHistory(rulesPath, lifecycle.HistoryConfig{Now: func() time.Time { return goldenTime }})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fakeAudit makes the golden daemon one in audit mode with would-drops.
func fakeAudit(cfg *control.ServerConfig) {
	cfg.Audit = func() *control.Audit {
		return &control.Audit{Why: "fwd --audit", WouldDrop: map[string]uint64{"no-match": 12, "acl-deny": 0, "limited": 1, "undecodable": 0}}
	}
	tab := suggest.NewTable(64, suggest.Options{})
	add := func(n int, dir direction.Dir, proto ipproto.Proto, peer string, port uint16) {
		for range n {
			tab.Add(filter.Key{Dir: dir, Proto: proto, Peer: netip.MustParseAddr(peer), Port: port}, goldenTime)
		}
	}
	add(7, direction.Ingress, ipproto.TCP, "198.51.100.7", 8443)
	add(2, direction.Ingress, ipproto.TCP, "198.51.100.9", 8443)
	add(2, direction.Ingress, ipproto.TCP, "198.51.101.9", 8443)
	add(1, direction.Ingress, ipproto.UDP, "2001:db8:5::1", 5353)
	add(1, direction.Egress, ipproto.TCP, "198.18.0.25", 25)
	cfg.WouldDrops = func() (*suggest.Table, bool) { return tab, true }
}

var (
	pidText = regexp.MustCompile(`pid \d+: .*`)
	pidJSON = regexp.MustCompile(`"pid": \d+,\n(\s*)"command": ".*"`)
)

// scrubPeers replaces the test process's pid and command line, which
// the history records, with placeholders.
func scrubPeers(s string) string {
	s = pidText.ReplaceAllString(s, "pid PID: COMMAND")
	return pidJSON.ReplaceAllString(s, "\"pid\": PID,\n$1\"command\": \"COMMAND\"")
}

// Every command suggest proposes is one fwctl's own grammar takes, and
// allows the traffic it was made from.
func TestSuggestionsParse(t *testing.T) {
	var cfg control.ServerConfig
	fakeAudit(&cfg)
	tab, _ := cfg.WouldDrops()
	ping := suggest.Key{Dir: direction.Ingress, Proto: ipproto.ICMP, Port: 8, ICMP: true, Peer: netip.MustParsePrefix("198.18.0.0/24")}
	entries := append(suggest.Aggregate(tab.Entries(), suggest.Options{}), suggest.Entry{Key: ping, Command: suggest.Command(ping)})
	for _, e := range entries {
		words := splitWords(e.Command)
		if len(words) < 3 || words[0] != "fwctl" || words[1] != "allow" {
			t.Fatalf("%q is not an fwctl allow command", e.Command)
		}
		specs, err := parseRuleWords(words[2:])
		if err != nil {
			t.Errorf("%q: %v", e.Command, err)
			continue
		}
		if len(specs) != 1 || specs[0].Proto != e.Proto.String() || len(specs[0].Peers) != 1 || specs[0].Peers[0] != e.Peer.String() {
			t.Errorf("%q parses as %+v", e.Command, specs)
		}
	}
}

// replay --suggest proposes the rule the capture's dropped SYN needs;
// --json with it is a usage error.
func TestReplaySuggest(t *testing.T) {
	rulesPath, capPath, _ := replayFixture(t)
	code, out, errOut := runFwctl("replay", "-f", rulesPath, "--host", "198.18.0.1", "--suggest", capPath)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	want := "Suggested rules for the dropped new connections:\nfwctl allow from 198.18.1.0/24 to any port 22 proto tcp   # 1 flow, last "
	if !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	code, out, _ = runFwctl("replay", "-f", rulesPath, "--suggest", "--prefix4", "32", capPath)
	if code != exitOK || !strings.Contains(out, "fwctl allow from 198.18.1.7/32 to any port 22 proto tcp") {
		t.Errorf("--prefix4 32: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"--suggest", "--json"}, {"--suggest", "--prefix4", "33"}} {
		if code, _, _ := runFwctl(append([]string{"replay", "-f", rulesPath, capPath}, args...)...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
