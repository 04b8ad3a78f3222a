package replay

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/packet/packettest"
)

// TestACLReasons: a new connection an ACL entry denies is dropped with
// reason acl-deny; one an entry allows (to a port no group opens) is
// accepted with acl-allow, and its flow then passes as established.
func TestACLReasons(t *testing.T) {
	banned := "198.18.1.66"
	rules := strings.Replace(webRules, "groups:", `acl:
  ingress:
    - {number: 100, action: deny, proto: tcp, from: [`+banned+`]}
    - {number: 200, action: allow, proto: tcp, ports: 2222, from: [`+peer+`]}
groups:`, 1)
	tb := table(t, rules)
	capture := packettest.Pcap(uint32(LinkEthernet), packettest.EthernetFrames(
		packettest.TCP(banned, hostS, 40000, 443, syn),   // acl-deny, though a rule allows 443
		packettest.TCP(peer, hostS, 40000, 443, syn),     // rule
		packettest.TCP(peer, hostS, 40001, 2222, syn),    // acl-allow
		packettest.TCP(hostS, peer, 2222, 40001, synack), // established
		packettest.TCP(peer, hostS, 40002, 2223, syn),    // no-match
	))
	var out bytes.Buffer
	r := New(tb, Options{Hosts: []netip.Addr{host4}, Verdicts: &out})
	if err := r.Replay("acl.pcap", bytes.NewReader(capture)); err != nil {
		t.Fatal(err)
	}
	sum := r.Summary()
	want := Reasons{Rule: 1, Established: 1, NoMatch: 1, ACLAllow: 1, ACLDeny: 1}
	if sum.Reasons != want {
		t.Errorf("reasons:\n got %+v\nwant %+v", sum.Reasons, want)
	}
	if sum.Accepted != 3 || sum.Dropped != 2 || sum.Flows != 2 {
		t.Errorf("accepted %d dropped %d flows %d, want 3 2 2", sum.Accepted, sum.Dropped, sum.Flows)
	}
	wantLines := `{"n":1,"verdict":"drop","reason":"acl-deny"}
{"n":2,"verdict":"accept","reason":"rule"}
{"n":3,"verdict":"accept","reason":"acl-allow"}
{"n":4,"verdict":"accept","reason":"established"}
{"n":5,"verdict":"drop","reason":"no-match"}
`
	if out.String() != wantLines {
		t.Errorf("verdicts:\n%s\nwant:\n%s", out.String(), wantLines)
	}
}
