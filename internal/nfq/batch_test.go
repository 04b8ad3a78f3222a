package nfq

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/fwd-project/fwd/internal/types/verdict"
	"golang.org/x/sys/unix"
)

// pkt describes one crafted NFQNL_MSG_PACKET.
type pkt struct {
	id      uint32
	hook    uint8
	mark    uint32 // sent as NFQA_MARK when not zero
	payload []byte // sent as NFQA_PAYLOAD when not nil
	noHdr   bool   // leave out NFQA_PACKET_HDR
	flags   uint16 // netlink header flags (NLM_F_MULTI...)
	inDev   uint32 // sent as NFQA_IFINDEX_INDEV
	outDev  uint32 // sent as NFQA_IFINDEX_OUTDEV when not zero
}

// nlMsg builds one netlink message of type typ around body.
func nlMsg(typ, flags uint16, seq uint32, body []byte) []byte {
	b := appendNlHdr(nil, uint32(nlmsgHdrLen+len(body)), typ, flags, seq)
	b = append(b, body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// packetMsg builds a queued-packet message as the kernel sends it: the
// nfgenmsg, then attributes in the kernel's order, with others mixed in
// that the parser must skip.
func packetMsg(p pkt) []byte {
	body := appendNfgen(nil, 5)
	if !p.noHdr {
		h := binary.BigEndian.AppendUint32(nil, p.id)
		h = binary.BigEndian.AppendUint16(h, 0x0800)
		h = append(h, p.hook)
		body = appendAttr(body, attrPacketHdr, h)
	}
	if p.mark != 0 {
		body = appendAttr(body, attrMark, binary.BigEndian.AppendUint32(nil, p.mark))
	}
	body = appendAttr(body, 4 /* NFQA_TIMESTAMP */, make([]byte, 16))
	body = appendAttr(body, attrInDev|0x4000 /* byte-order flag */, binary.BigEndian.AppendUint32(nil, p.inDev))
	if p.outDev != 0 {
		body = appendAttr(body, attrOutDev|0x4000, binary.BigEndian.AppendUint32(nil, p.outDev))
	}
	body = appendAttr(body, 7 /* NFQA_IFINDEX_PHYSINDEV: not the interface */, []byte{0, 0, 0, 99})
	if p.payload != nil {
		body = appendAttr(body, attrPayload, p.payload)
	}
	body = appendAttr(body, 13 /* NFQA_CAP_LEN */, []byte{0, 0, 5, 0xdc})
	return nlMsg(msgPacket, p.flags, 0, body)
}

// sentVerdict is one verdict message decoded from a verdict buffer.
type sentVerdict struct {
	id, verdict uint32
	mark        uint32
	hasMark     bool
}

// decodeVerdicts reads back a verdict buffer, checking its framing.
func decodeVerdicts(t *testing.T, b []byte) []sentVerdict {
	t.Helper()
	var out []sentVerdict
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			t.Fatalf("%d trailing bytes", len(b))
		}
		l := int(binary.NativeEndian.Uint32(b))
		typ := binary.NativeEndian.Uint16(b[4:])
		flags := binary.NativeEndian.Uint16(b[6:])
		if l > len(b) || l%4 != 0 || typ != msgVerdict || flags != unix.NLM_F_REQUEST {
			t.Fatalf("bad verdict header: len %d of %d, type %#x, flags %#x", l, len(b), typ, flags)
		}
		body := b[nlmsgHdrLen:l]
		if body[0] != unix.AF_UNSPEC || binary.BigEndian.Uint16(body[2:]) != 5 {
			t.Fatalf("bad nfgenmsg % x", body[:4])
		}
		var v sentVerdict
		for a := body[nfgenLen:]; len(a) > 0; {
			al := int(binary.NativeEndian.Uint16(a))
			switch binary.NativeEndian.Uint16(a[2:]) {
			case attrVerdict:
				v.verdict = binary.BigEndian.Uint32(a[4:])
				v.id = binary.BigEndian.Uint32(a[8:])
			case attrMark:
				v.mark, v.hasMark = binary.BigEndian.Uint32(a[4:]), true
			default:
				t.Fatalf("unexpected attribute in verdict % x", a)
			}
			a = a[(al+3)&^3:]
		}
		out = append(out, v)
		b = b[l:]
	}
	return out
}

// recorder is a Handler that remembers what it saw and accepts even ids.
type recorder struct {
	seen []Msg
}

func (r *recorder) handle(m *Msg) verdict.Verdict {
	c := *m
	c.Payload = append([]byte(nil), m.Payload...)
	r.seen = append(r.seen, c)
	if m.ID%2 == 0 {
		return verdict.Accept
	}
	return verdict.Drop
}

// errBody is an NLMSG_ERROR body: the error and the request's header.
func errBody(errno int32) []byte {
	e := uint32(errno)
	return append(binary.NativeEndian.AppendUint32(nil, e), make([]byte, 16)...)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestBatcherDatagrams(t *testing.T) {
	const mark = 0x20000000
	payload := []byte{0x45, 0, 0, 28, 1, 2, 3, 4, 5} // odd length: padding follows
	full := packetMsg(pkt{id: 8, hook: HookLocalIn, payload: payload})
	tests := []struct {
		name      string
		datagrams [][]byte
		handled   []uint32 // ids the handler saw, in order
		want      []sentVerdict
		malformed uint64
		vErrs     uint64
	}{
		{
			name: "one packet per datagram",
			datagrams: [][]byte{
				packetMsg(pkt{id: 1, hook: HookLocalIn, payload: payload}),
				packetMsg(pkt{id: 2, hook: HookLocalOut, mark: 0x7, payload: payload}),
				packetMsg(pkt{id: 3, hook: HookLocalIn, payload: payload}),
			},
			handled: []uint32{1, 2, 3},
			want: []sentVerdict{
				{id: 1, verdict: nfDrop},
				{id: 2, verdict: nfAccept, mark: mark | 0x7, hasMark: true},
				{id: 3, verdict: nfDrop},
			},
		},
		{
			name: "multipart datagram",
			datagrams: [][]byte{cat(
				packetMsg(pkt{id: 10, payload: payload, flags: unix.NLM_F_MULTI}),
				nlMsg(unix.NLMSG_NOOP, 0, 0, nil),
				packetMsg(pkt{id: 11, payload: payload, flags: unix.NLM_F_MULTI}),
				nlMsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 0, []byte{0, 0, 0, 0}),
				packetMsg(pkt{id: 99, payload: payload}), // after DONE: not read
			)},
			handled: []uint32{10, 11},
			want: []sentVerdict{
				{id: 10, verdict: nfAccept, mark: mark, hasMark: true},
				{id: 11, verdict: nfDrop},
			},
		},
		{
			name:      "truncated inside the payload",
			datagrams: [][]byte{cat(packetMsg(pkt{id: 4, payload: payload}), full[:len(full)-14])},
			handled:   []uint32{4},
			want: []sentVerdict{
				{id: 4, verdict: nfAccept, mark: mark, hasMark: true},
				{id: 8, verdict: nfDrop}, // id known, headers lost: dropped unjudged
			},
			malformed: 1,
		},
		{
			name:      "truncated before the id",
			datagrams: [][]byte{full[:nlmsgHdrLen+nfgenLen+6]},
			malformed: 1,
		},
		{
			name:      "no packet header",
			datagrams: [][]byte{packetMsg(pkt{noHdr: true, payload: payload})},
			malformed: 1,
		},
		{
			name:      "bad message length",
			datagrams: [][]byte{{4, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
			malformed: 1,
		},
		{
			name: "no payload, complete message",
			datagrams: [][]byte{
				packetMsg(pkt{id: 6}),
			},
			handled: []uint32{6},
			want:    []sentVerdict{{id: 6, verdict: nfAccept, mark: mark, hasMark: true}},
		},
		{
			name: "refused verdict reported by the kernel",
			datagrams: [][]byte{
				nlMsg(unix.NLMSG_ERROR, 0, 0, errBody(-int32(unix.ENOENT))),
				packetMsg(pkt{id: 12, payload: payload}),
			},
			handled: []uint32{12},
			want:    []sentVerdict{{id: 12, verdict: nfAccept, mark: mark, hasMark: true}},
			vErrs:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			b := batcher{queue: 5, acceptMark: mark, handler: r.handle, ack: make(chan error, 1)}
			for _, d := range tt.datagrams {
				b.datagram(d)
			}
			var ids []uint32
			for _, m := range r.seen {
				ids = append(ids, m.ID)
			}
			if len(ids) != len(tt.handled) {
				t.Fatalf("handler saw ids %v, want %v", ids, tt.handled)
			}
			for i := range ids {
				if ids[i] != tt.handled[i] {
					t.Fatalf("handler saw ids %v, want %v", ids, tt.handled)
				}
			}
			got := decodeVerdicts(t, b.out)
			if len(got) != len(tt.want) || b.pending != len(tt.want) {
				t.Fatalf("verdicts %+v (pending %d), want %+v", got, b.pending, tt.want)
			}
			answered := map[uint32]int{}
			for i := range got {
				answered[got[i].id]++
				if got[i] != tt.want[i] {
					t.Errorf("verdict %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			for id, n := range answered {
				if n != 1 {
					t.Errorf("id %d answered %d times", id, n)
				}
			}
			st := b.stats()
			if st.Malformed != tt.malformed || st.VerdictErrors != tt.vErrs || st.Received != uint64(len(tt.want)) {
				t.Errorf("stats %+v, want malformed %d, verdict errors %d, received %d", st, tt.malformed, tt.vErrs, len(tt.want))
			}
		})
	}
}

func TestBatcherHandlerSeesAttributes(t *testing.T) {
	var r recorder
	b := batcher{queue: 5, handler: r.handle}
	payload := []byte{0x60, 1, 2, 3, 4, 5, 6}
	b.datagram(packetMsg(pkt{id: 77, hook: HookLocalOut, mark: 0xabc, inDev: 2, outDev: 70000, payload: payload}))
	if len(r.seen) != 1 {
		t.Fatalf("handler called %d times", len(r.seen))
	}
	m := r.seen[0]
	if m.ID != 77 || m.Hook != HookLocalOut || m.Mark != 0xabc || string(m.Payload) != string(payload) {
		t.Errorf("handler got %+v, want id 77 hook %d mark 0xabc payload % x", m, HookLocalOut, payload)
	}
	if m.InDev != 2 || m.OutDev != 70000 {
		t.Errorf("handler got interfaces in %d out %d, want in 2 out 70000", m.InDev, m.OutDev)
	}
}

func TestBatcherAck(t *testing.T) {
	tests := []struct {
		name  string
		errno int32
		want  error
	}{
		{"bound", 0, nil},
		{"refused", -int32(unix.EPERM), syscall.EPERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := batcher{ack: make(chan error, 1)}
			b.datagram(nlMsg(unix.NLMSG_ERROR, 0, configSeq, errBody(tt.errno)))
			select {
			case err := <-b.ack:
				if !errors.Is(err, tt.want) && err != tt.want {
					t.Errorf("ack = %v, want %v", err, tt.want)
				}
			default:
				t.Fatal("no ack delivered")
			}
			if st := b.stats(); st.VerdictErrors != 0 {
				t.Errorf("ack counted as verdict error: %+v", st)
			}
		})
	}
}

func TestBindRequest(t *testing.T) {
	req := bindRequest(Config{Num: 9, CopyRange: 128, MaxQueueLen: 1024, FailOpen: true})
	if l := binary.NativeEndian.Uint32(req); int(l) != len(req) {
		t.Fatalf("header length %d, message %d bytes", l, len(req))
	}
	if typ := binary.NativeEndian.Uint16(req[4:]); typ != msgConfig {
		t.Errorf("type %#x, want %#x", typ, msgConfig)
	}
	if f := binary.NativeEndian.Uint16(req[6:]); f != unix.NLM_F_REQUEST|unix.NLM_F_ACK {
		t.Errorf("flags %#x", f)
	}
	got := map[uint16][]byte{}
	for a := req[nlmsgHdrLen+nfgenLen:]; len(a) > 0; {
		al := int(binary.NativeEndian.Uint16(a))
		got[binary.NativeEndian.Uint16(a[2:])] = a[4:al]
		a = a[(al+3)&^3:]
	}
	checks := []struct {
		attr uint16
		want []byte
	}{
		{cfgCmd, []byte{cmdBind, 0, 0, unix.AF_INET}},
		{cfgParams, []byte{0, 0, 0, 128, copyPacket}},
		{cfgMaxLen, []byte{0, 0, 4, 0}},
		{cfgMask, []byte{0, 0, 0, flagFailOpen | flagGSO}},
		{cfgFlags, []byte{0, 0, 0, flagFailOpen | flagGSO}},
	}
	for _, c := range checks {
		if string(got[c.attr]) != string(c.want) {
			t.Errorf("attribute %d = % x, want % x", c.attr, got[c.attr], c.want)
		}
	}
}

// countHandler decides without allocating, like the engine's Worker.
type countHandler struct{ n int }

func (c *countHandler) handle(m *Msg) verdict.Verdict {
	c.n++
	if len(m.Payload) > 0 && m.Payload[0]&1 == 0 {
		return verdict.Accept
	}
	return verdict.Drop
}

// TestBatcherZeroAlloc parses a batch of queued packets and builds the
// verdict buffer, reusing the buffer, without allocating.
func TestBatcherZeroAlloc(t *testing.T) {
	var datagrams [][]byte
	for i := range 64 {
		datagrams = append(datagrams, packetMsg(pkt{id: uint32(i + 1), hook: HookLocalIn, payload: []byte{byte(i), 0, 0, 40, 1, 2, 3, 4}}))
	}
	multi := cat(datagrams[0], datagrams[1], datagrams[2])
	var h countHandler
	b := batcher{queue: 5, acceptMark: 1, handler: h.handle, out: make([]byte, 0, 80*64)}
	allocs := testing.AllocsPerRun(100, func() {
		b.out, b.pending = b.out[:0], 0
		for _, d := range datagrams {
			b.datagram(d)
		}
		b.datagram(multi)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch, want 0", allocs)
	}
	if b.pending != 67 || len(decodeVerdicts(t, b.out)) != 67 {
		t.Errorf("%d verdicts pending, want 67", b.pending)
	}
}

func BenchmarkBatcher(b *testing.B) {
	var datagrams [][]byte
	for i := range 128 {
		datagrams = append(datagrams, packetMsg(pkt{id: uint32(i + 1), hook: HookLocalIn, payload: make([]byte, 60)}))
	}
	var h countHandler
	bt := batcher{queue: 5, acceptMark: 1, handler: h.handle, out: make([]byte, 0, 80*128)}
	b.ReportAllocs()
	for b.Loop() {
		bt.out, bt.pending = bt.out[:0], 0
		for _, d := range datagrams {
			bt.datagram(d)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(datagrams)), "ns/packet")
}
