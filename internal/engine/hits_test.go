package engine

import (
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// hitsRules are the rules the carry cases start from; every rule (and
// group web's default egress) has a distinct count, its rule number
// times ten, so that a count in the wrong place shows.
const hitsRules = `version: 1
prefix_lists:
  office: [198.18.1.0/24]
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [office]}
    egress: []
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: udp, ports: 53, from: [any]}
`

func TestSwapCarriesHits(t *testing.T) {
	// The counts of the old table: by group, direction, index.
	type at struct {
		group string
		dir   direction.Dir
		rule  int32 // filter.NoRule: the group's default egress
	}
	in := direction.Ingress
	start := map[at]uint64{{"ssh", in, 0}: 10, {"web", in, 0}: 20, {"web", in, 1}: 30, {"web", direction.Egress, filter.NoRule}: 40}
	tests := []struct {
		name string
		next string
		want map[at]uint64 // every accept slot of the new table; absent: 0
	}{
		{"same rules", hitsRules, start},
		{"a rule added, others moved down", `version: 1
prefix_lists:
  office: [198.18.1.0/24]
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [office]}
    egress: []
  - name: web
    ingress:
      - {proto: tcp, ports: 8080, from: [any]}
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: udp, ports: 53, from: [any]}
`, map[at]uint64{{"ssh", in, 0}: 10, {"web", in, 1}: 20, {"web", in, 2}: 30, {"web", direction.Egress, filter.NoRule}: 40}},
		{"groups reordered, a rule changed", `version: 1
prefix_lists:
  office: [198.18.1.0/24]
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 444], from: [any]}
      - {proto: udp, ports: 53, from: [any], description: dns}
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [office]}
    egress: []
`, map[at]uint64{{"web", in, 1}: 30, {"ssh", in, 0}: 10, {"web", direction.Egress, filter.NoRule}: 40}},
		{"prefix list changed: same text, other traffic", `version: 1
prefix_lists:
  office: [198.18.2.0/24]
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [office]}
    egress: []
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: udp, ports: 53, from: [any]}
`, map[at]uint64{{"web", in, 0}: 20, {"web", in, 1}: 30, {"web", direction.Egress, filter.NoRule}: 40}},
		{"rules written otherwise, same traffic: same IDs", `version: 1
prefix_lists:
  office: [198.18.1.0/24]
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [198.18.1.0/24], description: office}
    egress: []
  - name: web
    ingress:
      - {proto: udp, ports: 53, from: [0.0.0.0/0, "::/0"]}
      - {proto: tcp, ports: [443, 80], from: [any]}
`, map[at]uint64{{"ssh", in, 0}: 10, {"web", in, 1}: 20, {"web", in, 0}: 30, {"web", direction.Egress, filter.NoRule}: 40}},
		{"a duplicate added by hand: the first keeps the ID and the count", `version: 1
prefix_lists:
  office: [198.18.1.0/24]
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [office]}
    egress: []
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: tcp, ports: [80, 443], from: [any]}
      - {proto: udp, ports: 53, from: [any]}
`, map[at]uint64{{"ssh", in, 0}: 10, {"web", in, 0}: 20, {"web", in, 2}: 30, {"web", direction.Egress, filter.NoRule}: 40}},
		{"a rule moved to another group, egress restricted", `version: 1
prefix_lists:
  office: [198.18.1.0/24]
groups:
  - name: ssh
    ingress:
      - {proto: tcp, ports: 22, from: [office]}
      - {proto: udp, ports: 53, from: [any]}
    egress: []
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}
    egress: []
`, map[at]uint64{{"ssh", in, 0}: 10, {"web", in, 0}: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(compileRules(t, hitsRules), Config{})
			l := e.live.Load()
			f := l.t.File()
			for a, n := range start {
				s := l.t.Slot(accept(a.dir, f.GroupIndex(a.group), int(a.rule)))
				if s < 0 {
					t.Fatalf("no slot for %+v", a)
				}
				l.hits[s].Store(n)
			}
			next := compileRules(t, tt.next)
			e.Swap(next)
			got := e.RuleHits(next)
			nf := next.File()
			want := map[filter.Result]uint64{}
			for a, n := range tt.want {
				want[accept(a.dir, nf.GroupIndex(a.group), int(a.rule))] = n
			}
			for v, n := range got {
				if n != want[v] {
					t.Errorf("%s %s rule %d: %d hits, want %d", nf.Groups[v.Group].Name, v.Dir, v.Rule, n, want[v])
				}
			}
			for v := range want {
				if _, ok := got[v]; !ok {
					t.Errorf("no count for %+v", v)
				}
			}
		})
	}
}

func compileRules(t *testing.T, body string) *filter.Table {
	t.Helper()
	f, err := rules.Parse("rules.yaml", []byte(body), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := filter.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}
