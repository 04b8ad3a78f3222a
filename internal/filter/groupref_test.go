package filter

import (
	"net/netip"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// TestGroupRefMembers compiles a rule that names group web and proves
// that it admits web's members, and nothing else, only once resolved.
func TestGroupRefMembers(t *testing.T) {
	src := []byte(`version: 1
groups:
  - name: db
    ingress:
      - {proto: tcp, ports: 5432, from: [group:web, 198.18.0.9]}
  - name: web
`)
	f, err := rules.Parse("x.yaml", src, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	member, other, listed := netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("198.18.0.9")
	resolved, err := Compile(f.ResolveGroups(func(g string) []netip.Prefix {
		if g == "web" {
			return rules.HostPrefixes([]netip.Addr{member})
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	unresolved, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		table *Table
		peer  netip.Addr
		want  bool
	}{
		{resolved, member, true},
		{resolved, other, false},
		{resolved, listed, true},
		{unresolved, member, false}, // no members known: the reference matches nothing
		{unresolved, listed, true},
	}
	for i, tt := range tests {
		k := Key{Dir: direction.Ingress, Proto: ipproto.TCP, Peer: tt.peer, Port: 5432}
		if got := tt.table.Match(k).Accepted(); got != tt.want {
			t.Errorf("%d: %s accepted = %v, want %v", i, tt.peer, got, tt.want)
		}
	}
}
