package suggest

import (
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func in(proto ipproto.Proto, peer string, port uint16) filter.Key {
	return filter.Key{Dir: direction.Ingress, Proto: proto, Peer: netip.MustParseAddr(peer), Port: port}
}

func out(proto ipproto.Proto, peer string, port uint16) filter.Key {
	k := in(proto, peer, port)
	k.Dir = direction.Egress
	return k
}

func TestAggregate(t *testing.T) {
	ping := in(ipproto.ICMP, "198.18.7.1", 0)
	ping.Type = 8
	tests := []struct {
		name string
		opts Options // of the table
		agg  Options // of Aggregate
		keys []filter.Key
		want []string // command and count
	}{
		{
			name: "peers of one /24 and port are one rule",
			keys: []filter.Key{in(ipproto.TCP, "198.18.1.7", 443), in(ipproto.TCP, "198.18.1.9", 443), in(ipproto.TCP, "198.18.1.7", 22)},
			want: []string{"fwctl allow from 198.18.1.0/24 to any port 443 proto tcp 2", "fwctl allow from 198.18.1.0/24 to any port 22 proto tcp 1"},
		},
		{
			name: "other /24s and protocols stay apart",
			keys: []filter.Key{in(ipproto.UDP, "198.18.1.7", 53), in(ipproto.TCP, "198.18.2.7", 53)},
			want: []string{"fwctl allow from 198.18.2.0/24 to any port 53 proto tcp 1", "fwctl allow from 198.18.1.0/24 to any port 53 proto udp 1"},
		},
		{
			name: "coarser aggregation merges /24s",
			agg:  Options{Bits4: 16},
			keys: []filter.Key{in(ipproto.TCP, "198.18.1.7", 443), in(ipproto.TCP, "198.18.2.7", 443)},
			want: []string{"fwctl allow from 198.18.0.0/16 to any port 443 proto tcp 2"},
		},
		{
			name: "a finer aggregation than counted keeps the counted prefix",
			agg:  Options{Bits4: 32},
			keys: []filter.Key{in(ipproto.TCP, "198.18.1.7", 443)},
			want: []string{"fwctl allow from 198.18.1.0/24 to any port 443 proto tcp 1"},
		},
		{
			name: "host prefixes counted at /32",
			opts: Options{Bits4: 32},
			agg:  Options{Bits4: 32},
			keys: []filter.Key{in(ipproto.TCP, "198.18.1.7", 443)},
			want: []string{"fwctl allow from 198.18.1.7/32 to any port 443 proto tcp 1"},
		},
		{
			name: "ipv6 by /64, egress, icmp and portless protocols",
			keys: []filter.Key{in(ipproto.TCP, "2001:db8:1:2::7", 22), out(ipproto.UDP, "198.18.9.9", 53), ping, in(ipproto.Proto(47), "198.18.3.3", 0)},
			want: []string{
				"fwctl allow from 198.18.7.0/24 to any proto icmp type 8 1",
				"fwctl allow from 2001:db8:1:2::/64 to any port 22 proto tcp 1",
				"fwctl allow from 198.18.3.0/24 to any proto 47 1",
				"fwctl allow out to 198.18.9.0/24 port 53 proto udp 1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable(64, tt.opts)
			for i, k := range tt.keys {
				tab.Add(k, t0.Add(time.Duration(i)*time.Second))
			}
			got := Aggregate(tab.Entries(), tt.agg)
			var lines []string
			for _, e := range got {
				lines = append(lines, e.Command+" "+strconv.FormatUint(e.Count, 10))
			}
			if strings.Join(lines, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCommandAny(t *testing.T) {
	k := Key{Dir: direction.Ingress, Proto: ipproto.TCP, Port: 80, Peer: netip.MustParsePrefix("0.0.0.0/0")}
	if got, want := Command(k), "fwctl allow from any to any port 80 proto tcp"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFormat(t *testing.T) {
	tab := NewTable(0, Options{})
	for range 3 {
		tab.Add(in(ipproto.TCP, "198.18.1.7", 443), t0)
	}
	tab.Add(in(ipproto.TCP, "198.18.5.7", 8080), t0)
	got := Format(Aggregate(tab.Entries(), Options{}))
	want := "fwctl allow from 198.18.1.0/24 to any port 443 proto tcp    # 3 flows, last 2026-03-01T12:00:00Z\n" +
		"fwctl allow from 198.18.5.0/24 to any port 8080 proto tcp   # 1 flow, last 2026-03-01T12:00:00Z\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// A full table counts the rest as overflow; its entries stay right.
func TestTableFull(t *testing.T) {
	tab := NewTable(4, Options{Bits4: 32})
	for i := range 10 {
		tab.Add(in(ipproto.TCP, netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}).String(), 22), t0)
	}
	if n := len(tab.Entries()); n != 4 {
		t.Fatalf("%d entries in a table of 4", n)
	}
	if tab.Overflow() != 6 {
		t.Fatalf("overflow %d, want 6", tab.Overflow())
	}
}

func TestAddConcurrentNoAllocs(t *testing.T) {
	tab := NewTable(0, Options{})
	k := in(ipproto.TCP, "198.18.1.7", 443)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				tab.Add(k, t0)
			}
		})
	}
	wg.Wait()
	es := tab.Entries()
	if len(es) != 1 || es[0].Count != 4000 {
		t.Fatalf("entries %+v, want one of 4000", es)
	}
	if a := testing.AllocsPerRun(100, func() { tab.Add(k, t0) }); a != 0 {
		t.Fatalf("Add allocates %v times", a)
	}
}
