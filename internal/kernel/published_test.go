package kernel

import (
	"reflect"
	"testing"
)

func TestPublishedPorts(t *testing.T) {
	const saved = `*nat
:PREROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:NETAVARK-HOSTPORT-DNAT - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.19.12.2:80
-A DOCKER -d 198.18.0.1/32 ! -i docker0 -p udp -m udp --dport 5000:5010 -j DNAT --to-destination 198.19.12.3:5000-5010
-A NETAVARK-HOSTPORT-DNAT -p tcp -m multiport --dports 80,443 -j DNAT --to-destination 198.19.13.2
COMMIT
`
	got := PublishedPorts(IPv4, ParseSave(saved))
	want := []DNAT{
		{Family: IPv4, Chain: "DOCKER", Proto: "tcp", Ports: "8080", In: "!docker0", To: "198.19.12.2:80"},
		{Family: IPv4, Chain: "DOCKER", Proto: "udp", Ports: "5000:5010", Dest: "198.18.0.1", In: "!docker0", To: "198.19.12.3:5000-5010"},
		{Family: IPv4, Chain: "NETAVARK-HOSTPORT-DNAT", Proto: "tcp", Ports: "80,443", To: "198.19.13.2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PublishedPorts:\n got %+v\nwant %+v", got, want)
	}
	for _, c := range []struct {
		ports string
		want  [][2]uint16
	}{
		{"8080", [][2]uint16{{8080, 8080}}},
		{"5000:5010", [][2]uint16{{5000, 5010}}},
		{"80,443", [][2]uint16{{80, 80}, {443, 443}}},
		{"", nil},
		{"70000", nil},
		{"9:1", nil},
	} {
		if got := (DNAT{Ports: c.ports}).PortRanges(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("PortRanges(%q) = %v, want %v", c.ports, got, c.want)
		}
	}
}
