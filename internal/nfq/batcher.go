package nfq

import (
	"encoding/binary"
	"sync/atomic"
	"syscall"

	"github.com/fwd-project/fwd/internal/types/verdict"
	"golang.org/x/sys/unix"
)

// batcher turns received datagrams into Handler calls and a verdict
// buffer. It is the part of Batch without a socket, for tests.
type batcher struct {
	queue      uint16
	acceptMark uint32
	handler    Handler
	msg        Msg
	out        []byte     // verdicts of the current batch
	pending    int        // verdicts in out
	tainted    bool       // a verdict write failed: see coalesce
	ack        chan error // receives the answer to the bind request

	received, recvErrors, verdictErrors, malformed atomic.Uint64
}

func (b *batcher) stats() Stats {
	return Stats{
		Received:      b.received.Load(),
		RecvErrors:    b.recvErrors.Load(),
		VerdictErrors: b.verdictErrors.Load(),
		Malformed:     b.malformed.Load(),
	}
}

// datagram handles every netlink message of one received datagram. A
// message cut short (by the datagram's end, or a bad length) ends the
// datagram; a queued packet whose id was read is still answered (Drop,
// counted as malformed) so no packet is left waiting in the kernel.
func (b *batcher) datagram(buf []byte) {
	for len(buf) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(buf))
		typ := binary.NativeEndian.Uint16(buf[4:])
		seq := binary.NativeEndian.Uint32(buf[8:])
		cut := false
		if l < nlmsgHdrLen {
			b.malformed.Add(1)
			return
		}
		if l > len(buf) {
			cut, l = true, len(buf)
		}
		body := buf[nlmsgHdrLen:l]
		switch typ {
		case msgPacket:
			b.packet(body, cut)
		case unix.NLMSG_ERROR:
			b.nlError(body, seq)
		case unix.NLMSG_DONE:
			return
		case unix.NLMSG_OVERRUN:
			b.recvErrors.Add(1)
		case unix.NLMSG_NOOP:
		default:
			b.malformed.Add(1)
		}
		if cut {
			return
		}
		l = (l + 3) &^ 3
		if l >= len(buf) {
			return
		}
		buf = buf[l:]
	}
	if len(buf) > 0 {
		b.malformed.Add(1)
	}
}

// packet parses one NFQNL_MSG_PACKET body (nfgenmsg and attributes),
// asks the handler and appends the verdict.
func (b *batcher) packet(body []byte, cut bool) {
	m := &b.msg
	*m = Msg{}
	var haveID, havePayload bool
	if len(body) < nfgenLen {
		b.malformed.Add(1)
		return
	}
	attrs := body[nfgenLen:]
	for len(attrs) >= 4 {
		al := int(binary.NativeEndian.Uint16(attrs))
		at := binary.NativeEndian.Uint16(attrs[2:]) & nlaTypeMask
		if al < 4 || al > len(attrs) {
			cut = true
			break
		}
		data := attrs[4:al]
		switch at {
		case attrPacketHdr:
			// struct nfqnl_msg_packet_hdr { be32 id; be16 hw_protocol; u8 hook; }
			if len(data) >= 7 {
				m.ID = binary.BigEndian.Uint32(data)
				m.Hook = data[6]
				haveID = true
			}
		case attrMark:
			if len(data) >= 4 {
				m.Mark = binary.BigEndian.Uint32(data)
			}
		case attrInDev:
			if len(data) >= 4 {
				m.InDev = binary.BigEndian.Uint32(data)
			}
		case attrOutDev:
			if len(data) >= 4 {
				m.OutDev = binary.BigEndian.Uint32(data)
			}
		case attrPayload:
			m.Payload = data
			havePayload = true
		}
		al = (al + 3) &^ 3
		if al >= len(attrs) {
			attrs = nil
			break
		}
		attrs = attrs[al:]
	}
	if len(attrs) > 0 {
		cut = true // trailing bytes that are no attribute
	}
	if !haveID {
		b.malformed.Add(1)
		return
	}
	b.received.Add(1)
	if cut && !havePayload {
		// The packet's headers never arrived: drop it, unjudged.
		b.malformed.Add(1)
		b.verdict(m.ID, verdict.Drop, 0)
		return
	}
	v := b.handler(m)
	b.verdict(m.ID, v, m.Mark|b.acceptMark)
}

// verdict appends one NFQNL_MSG_VERDICT for id: an accept carries mark.
func (b *batcher) verdict(id uint32, v verdict.Verdict, mark uint32) {
	o := b.out
	l := verdictLen
	if v == verdict.Accept {
		l += 8
	}
	o = appendNlHdr(o, uint32(l), msgVerdict, unix.NLM_F_REQUEST, 0)
	o = appendNfgen(o, b.queue)
	// NFQA_VERDICT_HDR: struct nfqnl_msg_verdict_hdr { be32 verdict; be32 id; }
	o = binary.NativeEndian.AppendUint16(o, 12)
	o = binary.NativeEndian.AppendUint16(o, attrVerdict)
	if v == verdict.Accept {
		o = binary.BigEndian.AppendUint32(o, nfAccept)
	} else {
		o = binary.BigEndian.AppendUint32(o, nfDrop)
	}
	o = binary.BigEndian.AppendUint32(o, id)
	if v == verdict.Accept {
		o = binary.NativeEndian.AppendUint16(o, 8)
		o = binary.NativeEndian.AppendUint16(o, attrMark)
		o = binary.BigEndian.AppendUint32(o, mark)
	}
	b.out = o
	b.pending++
}

// nlError handles an NLMSG_ERROR: the answer to the bind request, or a
// verdict the kernel refused.
func (b *batcher) nlError(body []byte, seq uint32) {
	if len(body) < 4 {
		b.malformed.Add(1)
		return
	}
	errno := -int32(binary.NativeEndian.Uint32(body))
	var err error
	if errno != 0 {
		err = syscall.Errno(errno)
	}
	if seq == configSeq {
		select {
		case b.ack <- err:
		default:
		}
		return
	}
	if err != nil {
		b.verdictErrors.Add(1)
	}
}
