package conntrack

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// attr is one netlink attribute as the kernel lays it out: length and
// type in host order, the payload padded to 4 bytes.
func attr(typ uint16, payload ...[]byte) []byte {
	p := bytes.Join(payload, nil)
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(p)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, p...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

const nested = 1 << 15 // NLA_F_NESTED

func TestDeleteRequestEncoding(t *testing.T) {
	f := Flow{Proto: unix.IPPROTO_TCP, Src: netip.MustParseAddr("198.18.0.2"), Dst: netip.MustParseAddr("198.18.0.1"), SrcPort: 40000, DstPort: 22, ID: 7}
	m, err := deleteRequest(f)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Type != 1<<8|2 {
		t.Errorf("type %#x, want IPCTNL_MSG_CT_DELETE of CTNETLINK (0x102)", m.Header.Type)
	}
	want := []byte{unix.AF_INET, 0, 0, 0}
	want = append(want, attr(nested|ctaTupleOrig,
		attr(nested|ctaTupleIP, attr(ctaIPv4Src, []byte{198, 18, 0, 2}), attr(ctaIPv4Dst, []byte{198, 18, 0, 1})),
		attr(nested|ctaTupleProto, attr(ctaProtoNum, []byte{6}), attr(ctaProtoSrcPort, be16(40000)), attr(ctaProtoDstPort, be16(22))),
	)...)
	want = append(want, attr(ctaID, binary.BigEndian.AppendUint32(nil, 7))...)
	if !bytes.Equal(m.Data, want) {
		t.Fatalf("delete request\n got %x\nwant %x", m.Data, want)
	}
}

func TestParseFlow(t *testing.T) {
	for _, f := range []Flow{
		{Proto: unix.IPPROTO_TCP, Src: netip.MustParseAddr("198.18.0.2"), Dst: netip.MustParseAddr("198.18.0.1"), SrcPort: 40000, DstPort: 22, ID: 7},
		{Proto: unix.IPPROTO_UDP, Src: netip.MustParseAddr("2001:db8::2"), Dst: netip.MustParseAddr("2001:db8::1"), SrcPort: 5353, DstPort: 53, Zone: 3},
		{Proto: unix.IPPROTO_ICMP, Src: netip.MustParseAddr("198.18.0.2"), Dst: netip.MustParseAddr("198.18.0.1"), ICMPID: 99, ICMPType: 8},
		{Proto: unix.IPPROTO_ICMPV6, Src: netip.MustParseAddr("2001:db8::2"), Dst: netip.MustParseAddr("2001:db8::1"), ICMPID: 1, ICMPType: 128},
		{Proto: 47, Src: netip.MustParseAddr("198.18.0.2"), Dst: netip.MustParseAddr("198.18.0.1")},
	} {
		m, err := deleteRequest(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseFlow(m.Data)
		if err != nil || got != f {
			t.Errorf("parse(encode(%+v)) = %+v, %v", f, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {2, 0}, {2, 0, 0, 0}, {2, 0, 0, 0, 3, 0}} {
		if _, err := parseFlow(bad); err == nil {
			t.Errorf("parseFlow(%x): no error", bad)
		}
	}
}

func TestDeleteRequestRefusesBadAddresses(t *testing.T) {
	for _, f := range []Flow{
		{Proto: 6},
		{Proto: 6, Src: netip.MustParseAddr("198.18.0.2"), Dst: netip.MustParseAddr("2001:db8::1")},
	} {
		if _, err := deleteRequest(f); err == nil {
			t.Errorf("deleteRequest(%+v): no error", f)
		}
	}
}
