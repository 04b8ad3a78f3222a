package lifecycle

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// TestSingleHostGroupRefs: in single-host mode group:web stands for the
// host's own addresses, with one warning per referenced group, said once
// however often the file is compiled.
func TestSingleHostGroupRefs(t *testing.T) {
	src := `version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 443, from: [group:web]}
      - {proto: tcp, ports: 8443, from: [group:web]}
`
	f, err := rules.Parse("r.yaml", []byte(src), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	own := netip.MustParseAddr("198.18.0.1")
	addrs := func() ([]netip.Addr, error) { return []netip.Addr{own}, nil }
	rf, err := resolveSingleHost(f, addrs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resolveSingleHost(f, addrs); err != nil {
		t.Fatal(err)
	}
	ws := Warnings(f)
	if len(ws) != 1 || !strings.HasPrefix(ws[0], "r.yaml:5:9: group:web stands for this host's own addresses (198.18.0.1)") {
		t.Fatalf("warnings = %q", ws)
	}
	tb, err := filter.Compile(rf)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		peer netip.Addr
		want bool
	}{{own, true}, {netip.MustParseAddr("198.18.0.2"), false}} {
		k := filter.Key{Dir: direction.Ingress, Proto: ipproto.TCP, Peer: tt.peer, Port: 443}
		if got := tb.Match(k).Accepted(); got != tt.want {
			t.Errorf("%s: accepted %v, want %v", tt.peer, got, tt.want)
		}
	}
	// A file fleet mode resolved is left alone.
	fleet := f.ResolveGroups(func(string) []netip.Prefix { return nil })
	if got, _ := resolveSingleHost(fleet, addrs); got != fleet {
		t.Error("a resolved file was resolved again")
	}
}

func TestHostAddrsReachable(t *testing.T) {
	addrs, err := HostAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IsLoopback() || a.IsLinkLocalUnicast() {
			t.Errorf("%s listed: a peer cannot reach the host there", a)
		}
	}
}
