package lifecycle

import (
	"reflect"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

func TestAdmits(t *testing.T) {
	f, err := rules.Parse("rules.yaml", []byte(`version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 8081, from: [any]}
      - {proto: tcp, ports: 9000, from: [198.51.100.0/24, 2001:db8:100::/48]}
      - {proto: tcp, ports: 9000, from: [203.0.113.7]}
      - {proto: udp, ports: 5000-5004, from: [any]}
  - name: ops
    ingress:
      - {proto: all, from: [192.0.2.0/24]}
`), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tcp, udp := ipproto.Proto(6), ipproto.Proto(17)
	for _, c := range []struct {
		name   string
		proto  ipproto.Proto
		lo, hi uint16
		v6     bool
		want   Admission
	}{
		{"open to any", tcp, 8081, 8081, false, Admission{Any: true}},
		{"open to any v6", tcp, 8081, 8081, true, Admission{Any: true}},
		{"closed but for ops", tcp, 8080, 8080, false, Admission{Peers: []string{"192.0.2.0/24"}}},
		{"closed over v6", tcp, 8080, 8080, true, Admission{}},
		{"some peers, two rules", tcp, 9000, 9000, false, Admission{Peers: []string{"198.51.100.0/24", "203.0.113.7/32", "192.0.2.0/24"}}},
		{"some peers v6", tcp, 9000, 9000, true, Admission{Peers: []string{"2001:db8:100::/48"}}},
		{"range inside", udp, 5001, 5003, false, Admission{Any: true}},
		{"range past the rule", udp, 5000, 5010, true, Admission{Partly: true}},
		{"udp is not tcp", udp, 8081, 8081, true, Admission{}},
	} {
		if got := Admits(f, c.proto, c.lo, c.hi, c.v6); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
