// Package conntrack lists and deletes the kernel's connection-tracking
// entries through ctnetlink (netfilter netlink, subsystem CTNETLINK),
// with the few messages fwd needs: a dump of every entry
// (IPCTNL_MSG_CT_GET with NLM_F_DUMP), filtered in Go, and a delete of
// one entry by its original tuple (IPCTNL_MSG_CT_DELETE). fwd uses it to
// cut the established connections a new ACL deny entry matches: once
// their conntrack entry is gone, the next packet of such a connection is
// no longer ESTABLISHED, and is judged (and dropped) as a new one.
//
// A Conn is bound to the network namespace of the thread that dialled
// it.
package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The ctnetlink constants used here (linux/netfilter/nfnetlink.h,
// nfnetlink_conntrack.h).
const (
	subsysCTNetlink = 1 // NFNL_SUBSYS_CTNETLINK
	msgCTGet        = 1 // IPCTNL_MSG_CT_GET
	msgCTDelete     = 2 // IPCTNL_MSG_CT_DELETE

	ctaTupleOrig = 1  // CTA_TUPLE_ORIG
	ctaID        = 12 // CTA_ID
	ctaZone      = 18 // CTA_ZONE

	ctaTupleIP    = 1 // CTA_TUPLE_IP
	ctaTupleProto = 2 // CTA_TUPLE_PROTO

	ctaIPv4Src = 1 // CTA_IP_V4_SRC
	ctaIPv4Dst = 2
	ctaIPv6Src = 3
	ctaIPv6Dst = 4

	ctaProtoNum      = 1 // CTA_PROTO_NUM
	ctaProtoSrcPort  = 2
	ctaProtoDstPort  = 3
	ctaProtoICMPID   = 4
	ctaProtoICMPType = 5
	ctaProtoICMPCode = 6
	ctaProtoICMP6ID  = 7
	ctaProtoICMP6Typ = 8
	ctaProtoICMP6Cod = 9
)

// Flow is one conntrack entry, by its original direction: Src is who
// opened the connection.
type Flow struct {
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16 // tcp, udp, sctp, dccp, udplite
	// ICMP echo and friends are tracked by id, type and code.
	ICMPID             uint16
	ICMPType, ICMPCode uint8
	ID                 uint32 // the kernel's id of the entry (CTA_ID), 0 when not sent
	Zone               uint16
}

func (f Flow) family() uint8 {
	if f.Src.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// Conn is a ctnetlink socket.
type Conn struct{ c *netlink.Conn }

// Dial opens a ctnetlink socket in the calling thread's network
// namespace.
func Dial() (*Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("conntrack: dial netfilter netlink: %w", err)
	}
	return &Conn{c: c}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.c.Close() }

// Dump lists every conntrack entry of both address families. Entries
// it cannot read (a protocol tuple it does not know) are left out.
func (c *Conn) Dump() ([]Flow, error) {
	msgs, err := c.c.Execute(dumpRequest())
	if err != nil {
		return nil, fmt.Errorf("conntrack: dump: %w", err)
	}
	out := make([]Flow, 0, len(msgs))
	for _, m := range msgs {
		if f, err := parseFlow(m.Data); err == nil {
			out = append(out, f)
		}
	}
	return out, nil
}

// Delete removes f's entry. An entry that is gone already (it timed
// out, or was closed meanwhile) is not an error.
func (c *Conn) Delete(f Flow) error {
	m, err := deleteRequest(f)
	if err != nil {
		return err
	}
	if _, err := c.c.Execute(m); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("conntrack: delete %s %s -> %s: %w", protoName(f.Proto), f.Src, f.Dst, err)
	}
	return nil
}

// DeleteMatching dumps the entries and deletes those match accepts. It
// returns how many it deleted, and the first error (it goes on after
// one).
func (c *Conn) DeleteMatching(match func(Flow) bool) (int, error) {
	flows, err := c.Dump()
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for _, f := range flows {
		if !match(f) {
			continue
		}
		if err := c.Delete(f); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		n++
	}
	return n, first
}

func header(msg uint16, flags netlink.HeaderFlags) netlink.Header {
	return netlink.Header{Type: netlink.HeaderType(subsysCTNetlink<<8 | msg), Flags: flags}
}

// nfgenmsg is the netfilter header: family, version 0, resource id 0.
func nfgenmsg(family uint8) []byte { return []byte{family, 0, 0, 0} }

func dumpRequest() netlink.Message {
	return netlink.Message{Header: header(msgCTGet, netlink.Request|netlink.Dump), Data: nfgenmsg(unix.AF_UNSPEC)}
}

// deleteRequest is IPCTNL_MSG_CT_DELETE for f: its original tuple, its
// zone, and its id when known (so that a new entry with the same tuple
// is not the one deleted).
func deleteRequest(f Flow) (netlink.Message, error) {
	if !f.Src.IsValid() || !f.Dst.IsValid() || f.Src.Is4() != f.Dst.Is4() {
		return netlink.Message{}, fmt.Errorf("conntrack: delete: bad addresses %v -> %v", f.Src, f.Dst)
	}
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.Nested(ctaTupleOrig, func(t *netlink.AttributeEncoder) error {
		t.Nested(ctaTupleIP, func(ip *netlink.AttributeEncoder) error {
			if f.Src.Is4() {
				ip.Bytes(ctaIPv4Src, f.Src.AsSlice())
				ip.Bytes(ctaIPv4Dst, f.Dst.AsSlice())
			} else {
				ip.Bytes(ctaIPv6Src, f.Src.AsSlice())
				ip.Bytes(ctaIPv6Dst, f.Dst.AsSlice())
			}
			return nil
		})
		t.Nested(ctaTupleProto, func(p *netlink.AttributeEncoder) error {
			p.Uint8(ctaProtoNum, f.Proto)
			switch f.Proto {
			case unix.IPPROTO_ICMP:
				p.Uint16(ctaProtoICMPID, f.ICMPID)
				p.Uint8(ctaProtoICMPType, f.ICMPType)
				p.Uint8(ctaProtoICMPCode, f.ICMPCode)
			case unix.IPPROTO_ICMPV6:
				p.Uint16(ctaProtoICMP6ID, f.ICMPID)
				p.Uint8(ctaProtoICMP6Typ, f.ICMPType)
				p.Uint8(ctaProtoICMP6Cod, f.ICMPCode)
			case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP, unix.IPPROTO_UDPLITE:
				p.Uint16(ctaProtoSrcPort, f.SrcPort)
				p.Uint16(ctaProtoDstPort, f.DstPort)
			}
			return nil
		})
		return nil
	})
	if f.Zone != 0 {
		ae.Uint16(ctaZone, f.Zone)
	}
	if f.ID != 0 {
		ae.Uint32(ctaID, f.ID)
	}
	b, err := ae.Encode()
	if err != nil {
		return netlink.Message{}, fmt.Errorf("conntrack: encode delete: %w", err)
	}
	return netlink.Message{Header: header(msgCTDelete, netlink.Request|netlink.Acknowledge), Data: append(nfgenmsg(f.family()), b...)}, nil
}

// parseFlow reads one entry of a dump: the netfilter header, then the
// attributes.
func parseFlow(b []byte) (Flow, error) {
	var f Flow
	if len(b) < 4 {
		return f, errors.New("conntrack: short message")
	}
	ad, err := netlink.NewAttributeDecoder(b[4:])
	if err != nil {
		return f, err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case ctaTupleOrig:
			ad.Nested(func(t *netlink.AttributeDecoder) error { return parseTuple(t, &f) })
		case ctaID:
			f.ID = ad.Uint32()
		case ctaZone:
			f.Zone = ad.Uint16()
		}
	}
	if err := ad.Err(); err != nil {
		return f, err
	}
	if !f.Src.IsValid() || !f.Dst.IsValid() {
		return f, errors.New("conntrack: entry without an original tuple")
	}
	return f, nil
}

func parseTuple(t *netlink.AttributeDecoder, f *Flow) error {
	for t.Next() {
		switch t.Type() {
		case ctaTupleIP:
			t.Nested(func(ip *netlink.AttributeDecoder) error {
				for ip.Next() {
					a, _ := netip.AddrFromSlice(ip.Bytes())
					switch ip.Type() {
					case ctaIPv4Src, ctaIPv6Src:
						f.Src = a
					case ctaIPv4Dst, ctaIPv6Dst:
						f.Dst = a
					}
				}
				return nil
			})
		case ctaTupleProto:
			t.Nested(func(p *netlink.AttributeDecoder) error {
				for p.Next() {
					switch p.Type() {
					case ctaProtoNum:
						f.Proto = p.Uint8()
					case ctaProtoSrcPort:
						f.SrcPort = p.Uint16()
					case ctaProtoDstPort:
						f.DstPort = p.Uint16()
					case ctaProtoICMPID, ctaProtoICMP6ID:
						f.ICMPID = p.Uint16()
					case ctaProtoICMPType, ctaProtoICMP6Typ:
						f.ICMPType = p.Uint8()
					case ctaProtoICMPCode, ctaProtoICMP6Cod:
						f.ICMPCode = p.Uint8()
					}
				}
				return nil
			})
		}
	}
	return nil
}

func protoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_ICMP:
		return "icmp"
	case unix.IPPROTO_ICMPV6:
		return "icmpv6"
	}
	return fmt.Sprintf("proto %d", p)
}
