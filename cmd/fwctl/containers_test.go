package main

import (
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/control"
)

func TestPrintContainers(t *testing.T) {
	for _, c := range []struct {
		name string
		in   *control.Containers
		want []string // lines, in order, each must appear
	}{
		{"none", nil, nil},
		{"hooked", &control.Containers{
			Hooked: true,
			Published: []control.PublishedPort{
				{Family: "ipv4", Proto: "tcp", Ports: "8080", To: "198.19.12.2:80", Chain: "DOCKER", Admitted: "none"},
				{Family: "ipv6", Proto: "udp", Ports: "5000:5010", Host: "2001:db8::1", To: "[2001:db8:12::3]:5000-5010", Chain: "DOCKER", Admitted: "partly"},
				{Family: "ipv4", Proto: "tcp", Ports: "9000", To: "198.19.13.2", Chain: "NETAVARK-HOSTPORT-DNAT", Admitted: "some", From: []string{"198.51.100.0/24"}},
			},
			Notes: []string{"n"},
		}, []string{
			"Containers (published ports, from the nat table's DNAT rules; decided by the rules above, before the DNAT):",
			"8080/tcp (v4)              198.19.12.2:80                 DOCKER                       closed: no rule admits it",
			"2001:db8::1 5000-5010/udp (v6) [2001:db8:12::3]:5000-5010     DOCKER                       partly open (some ports)",
			"9000/tcp (v4)              198.19.13.2                    NETAVARK-HOSTPORT-DNAT       open from 198.51.100.0/24",
			"Note: n",
		}},
		{"not hooked", &control.Containers{Warnings: []string{"w"}}, []string{
			"NOT decided by fwd (--containers=false)",
			"Warning: w",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			printContainers(&b, c.in)
			out := b.String()
			if c.want == nil && out != "" {
				t.Fatalf("printed %q for no containers", out)
			}
			rest := out
			for _, w := range c.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (or not in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
