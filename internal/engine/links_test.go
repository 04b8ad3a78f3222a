package engine

import (
	"testing"

	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/nfq"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// ifaceRules: 80 everywhere, 5432 only on the private side (eth1),
// egress to 9000 only out of eth1.
const ifaceRules = `version: 1
groups:
  - name: web
    ingress: [{proto: tcp, ports: 80, from: [any]}]
    egress: []
  - name: private
    interfaces: ["eth1*"]
    ingress: [{proto: tcp, ports: 5432, from: [any]}]
    egress: [{proto: tcp, ports: 9000, to: [any]}]
`

func TestDecideByInterface(t *testing.T) {
	e, _ := mustEngine(t, ifaceRules, nil)
	w := e.NewWorker(0)
	const eth0, eth1, later = 2, 3, 9
	e.SetLinks([]filter.Link{{Index: eth0, Name: "eth0"}, {Index: eth1, Name: "eth1"}})
	db := func(dev uint32) *nfq.Msg {
		return &nfq.Msg{Hook: nfq.HookLocalIn, InDev: dev, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 5432)}
	}
	up := func(dev uint32) *nfq.Msg {
		return &nfq.Msg{Hook: nfq.HookLocalOut, OutDev: dev, InDev: eth1, Payload: pkt(t, "tcp", "198.18.0.1", "198.18.0.2", 9000)}
	}
	tests := []struct {
		name string
		m    *nfq.Msg
		want verdict.Verdict
	}{
		{"80 on eth0", &nfq.Msg{Hook: nfq.HookLocalIn, InDev: eth0, Payload: pkt(t, "tcp", "198.18.0.2", "198.18.0.1", 80)}, verdict.Accept},
		{"5432 on eth1", db(eth1), verdict.Accept},
		{"5432 on eth0", db(eth0), verdict.Drop},
		{"5432 on an unknown interface", db(later), verdict.Drop},
		{"egress 9000 out of eth1", up(eth1), verdict.Accept},
		{"egress 9000 out of eth0 (in-dev eth1 does not count)", up(eth0), verdict.Drop},
	}
	for _, tt := range tests {
		if v := w.Decide(tt.m); v != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, v, tt.want)
		}
	}
	// An interface that appears later is covered with no new table.
	tbl := e.Table()
	if !e.SetLinks([]filter.Link{{Index: eth0, Name: "eth0"}, {Index: eth1, Name: "eth1"}, {Index: later, Name: "eth12"}}) {
		t.Fatal("SetLinks with a new interface reported no change")
	}
	if v := w.Decide(db(later)); v != verdict.Accept || e.Table() != tbl {
		t.Errorf("5432 on eth12 once it appeared: %v, want accept from the same table", v)
	}
	// A swapped-in table is bound before it goes live.
	next, err := filter.Compile(tbl.File())
	if err != nil {
		t.Fatal(err)
	}
	e.Swap(next)
	if v := w.Decide(db(later)); v != verdict.Accept {
		t.Errorf("5432 on eth12 after a swap: %v, want accept", v)
	}
	m := db(eth1)
	if n := testing.AllocsPerRun(200, func() { w.Decide(m) }); n != 0 {
		t.Errorf("%v allocs per Decide with interfaces, want 0", n)
	}
}
