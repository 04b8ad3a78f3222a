package replay

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/fwd-project/fwd/internal/packet"
	"github.com/fwd-project/fwd/internal/types/ipproto"
	"github.com/fwd-project/fwd/internal/types/verdict"
)

// Summary is the result of a run, shaped for `fwctl replay --json`.
// Packets = Accepted + Dropped + Transit + NotIP; Malformed packets are
// among the dropped ones.
type Summary struct {
	Packets   uint64  `json:"packets"`
	Accepted  uint64  `json:"accepted"`
	Dropped   uint64  `json:"dropped"`
	Transit   uint64  `json:"transit"`
	NotIP     uint64  `json:"not_ip"`
	Malformed uint64  `json:"malformed"`
	Flows     uint64  `json:"flows"` // flows started (first packet accepted and tracked)
	PPS       float64 `json:"pps"`   // packets per second of wall time spent replaying
	Seconds   float64 `json:"seconds"`

	Reasons      Reasons `json:"reasons"`
	FlowOverflow uint64  `json:"flow_overflow"` // accepted first packets the full table could not track
	FlowsExpired uint64  `json:"flows_expired"` // flows ended by an idle timeout
	FlowsClosed  uint64  `json:"flows_closed"`  // TCP flows closed by FIN both ways or RST
	MaxFlows     int     `json:"max_flows"`
	// Fragments: IPv4 datagrams reassembled, and captured fragments
	// dropped because their datagram never completed.
	Fragments FragStats   `json:"fragments"`
	Files     []FileStats `json:"files"`
	Diff      *Diff       `json:"diff,omitempty"`
}

// Reasons counts packets by reason.
type Reasons struct {
	Rule        uint64 `json:"rule"`
	Established uint64 `json:"established"`
	Related     uint64 `json:"related"`
	NoMatch     uint64 `json:"no-match"`
	Malformed   uint64 `json:"malformed"`
	NotIP       uint64 `json:"not-ip"`
	Transit     uint64 `json:"transit"`
	Loopback    uint64 `json:"loopback"`
	// NeighbourDiscovery counts IPv6 neighbour discovery and MLD, which
	// the host accepts before fwd sees it.
	NeighbourDiscovery uint64 `json:"neighbour-discovery"`
	// ACLAllow and ACLDeny count new connections an ACL entry decided,
	// before the groups.
	ACLAllow uint64 `json:"acl-allow"`
	ACLDeny  uint64 `json:"acl-deny"`
}

// FragStats counts IPv4 reassembly.
type FragStats struct {
	Reassembled uint64 `json:"reassembled"` // datagrams
	Incomplete  uint64 `json:"incomplete"`  // packets
}

// FileStats describes one capture of the run.
type FileStats struct {
	Path      string    `json:"path"`
	Format    string    `json:"format"`
	LinkTypes []string  `json:"link_types"`
	Packets   uint64    `json:"packets"`
	First     int64     `json:"-"`
	Last      int64     `json:"-"`
	Start     time.Time `json:"start,omitzero"` // first packet's capture time
	Duration  float64   `json:"duration"`       // capture seconds from first to last packet
	Complete  bool      `json:"complete"`
	Stop      *StopInfo `json:"stopped,omitempty"`
}

// StopInfo says where a capture stopped being readable.
type StopInfo struct {
	Packet uint64 `json:"packet"`
	Offset int64  `json:"offset"` // -1: unknown
	Error  string `json:"error"`
}

func (fs *FileStats) addLink(lt LinkType) {
	name := lt.String()
	for _, l := range fs.LinkTypes {
		if l == name {
			return
		}
	}
	fs.LinkTypes = append(fs.LinkTypes, name)
}

// Diff lists what the second table (--diff) would change.
type Diff struct {
	Accepted uint64   `json:"accepted"` // packets the second table accepts
	Dropped  uint64   `json:"dropped"`
	Flows    uint64   `json:"flows"`
	Changes  []Change `json:"changes"`
	Overflow uint64   `json:"overflow"` // changed flows beyond MaxFlows, not listed
}

// Change is a flow whose packets the second table treats differently.
// The 5-tuple is oriented as its first changed packet.
type Change struct {
	Proto   ipproto.Proto `json:"proto"`
	Src     netip.Addr    `json:"src"`
	Dst     netip.Addr    `json:"dst"`
	SrcPort uint16        `json:"sport"`
	DstPort uint16        `json:"dport"`
	File    string        `json:"file"`
	Packet  uint64        `json:"packet"` // number of the first changed packet in File
	Time    time.Time     `json:"time"`   // its capture time
	Old     string        `json:"old"`    // verdict (reason) under the first table
	New     string        `json:"new"`    // under the second
	Packets uint64        `json:"packets"`
}

type changeSet struct {
	idx      map[flowKey]int
	list     []Change
	max      int
	overflow uint64
}

func newChangeSet(max int) *changeSet {
	return &changeSet{idx: make(map[flowKey]int), max: max}
}

func verdictWords(r Reason) string { return r.Outcome() + " (" + r.String() + ")" }

func (c *changeSet) add(p *packet.Packet, file string, n uint64, ts int64, ra, rb Reason, count uint64) {
	k, _ := packetKey(p)
	if i, ok := c.idx[k]; ok {
		c.list[i].Packets += count
		return
	}
	if len(c.list) >= c.max {
		c.overflow++
		return
	}
	c.idx[k] = len(c.list)
	c.list = append(c.list, Change{
		Proto: p.Proto, Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort,
		File: file, Packet: n, Time: time.Unix(0, ts).UTC(),
		Old: verdictWords(ra), New: verdictWords(rb), Packets: count,
	})
}

// addCount adds held fragments to the change of the packet just added.
func (c *changeSet) addCount(p *packet.Packet, count uint64) {
	k, _ := packetKey(p)
	if i, ok := c.idx[k]; ok {
		c.list[i].Packets += count
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

func (s *sim) fill(sum *Summary) {
	c := &s.reasons
	sum.Reasons = Reasons{
		Rule: c[ReasonRule], Established: c[ReasonEstablished], Related: c[ReasonRelated],
		NoMatch: c[ReasonNoMatch], Malformed: c[ReasonMalformed], NotIP: c[ReasonNotIP],
		Transit: c[ReasonTransit], Loopback: c[ReasonLoopback],
		NeighbourDiscovery: c[ReasonNeighbourDiscovery],
		ACLAllow:           c[ReasonACLAllow], ACLDeny: c[ReasonACLDeny],
	}
	for r, n := range c {
		sum.Packets += n
		switch v, ignored := Reason(r).Verdict(); {
		case ignored:
		case v == verdict.Accept:
			sum.Accepted += n
		default:
			sum.Dropped += n
		}
	}
	sum.Transit = c[ReasonTransit]
	sum.NotIP = c[ReasonNotIP]
	sum.Malformed = c[ReasonMalformed]
	sum.Flows = s.flows.started
	sum.FlowOverflow = s.flows.overflow
	sum.FlowsExpired = s.flows.expired
	sum.FlowsClosed = s.flows.closed
}

// Summary sums up every capture replayed so far.
func (r *Replayer) Summary() Summary {
	var sum Summary
	r.main.fill(&sum)
	sum.MaxFlows = r.opts.MaxFlows
	sum.Seconds = r.elapsed.Seconds()
	if sum.Seconds > 0 {
		sum.PPS = float64(sum.Packets) / sum.Seconds
	}
	sum.Fragments = FragStats{Reassembled: r.frag.reassembled, Incomplete: r.frag.incomplete}
	sum.Files = make([]FileStats, len(r.files))
	copy(sum.Files, r.files)
	for i := range sum.Files {
		f := &sum.Files[i]
		if f.Packets > 0 {
			f.Start = time.Unix(0, f.First).UTC()
			f.Duration = float64(f.Last-f.First) / 1e9
		}
	}
	if r.other != nil {
		var o Summary
		r.other.fill(&o)
		d := &Diff{Accepted: o.Accepted, Dropped: o.Dropped, Flows: o.Flows, Overflow: r.changes.overflow}
		d.Changes = append([]Change{}, r.changes.list...) // in capture order
		sum.Diff = d
	}
	return sum
}
