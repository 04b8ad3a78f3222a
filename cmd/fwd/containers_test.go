package main

import (
	"reflect"
	"testing"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/kernel"
	"github.com/fwd-project/fwd/internal/rules"
)

func TestPublishedPort(t *testing.T) {
	f, err := rules.Parse("rules.yaml", []byte(`version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 8081], from: [any]}
      - {proto: tcp, ports: 9000, from: [198.51.100.0/24]}
      - {proto: udp, ports: 5000-5004, from: [any]}
`), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v4 := func(proto, ports string) kernel.DNAT {
		return kernel.DNAT{Family: kernel.IPv4, Chain: "DOCKER", Proto: proto, Ports: ports, To: "198.19.12.2:80"}
	}
	for _, c := range []struct {
		name     string
		in       kernel.DNAT
		admitted string
		from     []string
	}{
		{"open", v4("tcp", "8081"), "any", nil},
		{"closed", v4("tcp", "8080"), "none", nil},
		{"some peers", v4("tcp", "9000"), "some", []string{"198.51.100.0/24"}},
		{"two ports, both open", v4("tcp", "80,8081"), "any", nil},
		{"two ports, one open", v4("tcp", "80,8080"), "partly", nil},
		{"a range past the rule", v4("udp", "5000:5010"), "partly", nil},
		{"every port of every protocol", v4("", ""), "partly", nil},
		{"v6 from a v4-only rule", kernel.DNAT{Family: kernel.IPv6, Proto: "tcp", Ports: "9000"}, "none", nil},
	} {
		got := publishedPort(f, c.in)
		if got.Admitted != c.admitted || !reflect.DeepEqual(got.From, c.from) {
			t.Errorf("%s: admitted %q from %q, want %q from %q", c.name, got.Admitted, got.From, c.admitted, c.from)
		}
	}
	want := control.PublishedPort{Family: "ipv4", Proto: "all", Ports: "all", To: "198.19.12.2:80", Chain: "DOCKER", Admitted: "partly"}
	if got := publishedPort(f, v4("", "")); !reflect.DeepEqual(got, want) {
		t.Errorf("a DNAT of everything: %+v, want %+v", got, want)
	}
}
