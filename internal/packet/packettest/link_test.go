package packettest

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestLinkWrappers decodes every wrapper's frame with gopacket: the
// link header it names, then the IP packet it wraps, unchanged.
func TestLinkWrappers(t *testing.T) {
	// Not udp6DNS: gopacket would decode its payload as a DNS message.
	v4, v6 := tcp4SYN(), UDP(c6, s6, 40000, 9999, []byte("x"))
	tests := []struct {
		name  string
		frame []byte
		first gopacket.Decoder
		ip    []byte
		want  []gopacket.LayerType // the link layers, in order
	}{
		{"ethernet ipv4", Ethernet(v4), layers.LayerTypeEthernet, v4, []gopacket.LayerType{layers.LayerTypeEthernet}},
		{"ethernet ipv6", Ethernet(v6), layers.LayerTypeEthernet, v6, []gopacket.LayerType{layers.LayerTypeEthernet}},
		{"802.1q", Ethernet(v4, EtherType8021Q), layers.LayerTypeEthernet, v4, []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeDot1Q}},
		{"qinq", Ethernet(v6, EtherType8021AD, EtherType8021Q), layers.LayerTypeEthernet, v6, []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeDot1Q, layers.LayerTypeDot1Q}},
		{"sll", SLL(EtherTypeOf(v6), v6), layers.LayerTypeLinuxSLL, v6, []gopacket.LayerType{layers.LayerTypeLinuxSLL}},
		{"null le", Null(2, binary.LittleEndian, v4), layers.LayerTypeLoopback, v4, []gopacket.LayerType{layers.LayerTypeLoopback}},
		{"null be", Null(2, binary.BigEndian, v4), layers.LayerTypeLoopback, v4, []gopacket.LayerType{layers.LayerTypeLoopback}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := gopacket.NewPacket(tt.frame, tt.first, gopacket.Default)
			if err := p.ErrorLayer(); err != nil {
				t.Fatalf("decode: %v", err.Error())
			}
			ls := p.Layers()
			if len(ls) < len(tt.want)+1 {
				t.Fatalf("layers %v", ls)
			}
			for i, w := range tt.want {
				if ls[i].LayerType() != w {
					t.Errorf("layer %d is %v, want %v", i, ls[i].LayerType(), w)
				}
			}
			if ip := p.NetworkLayer(); ip == nil || !bytes.Equal(append(ip.LayerContents(), ip.LayerPayload()...), tt.ip) {
				t.Errorf("the wrapped packet is not the IP packet given")
			}
		})
	}
}

// TestSLL2 checks the cooked v2 header by hand (gopacket 1.1.19 has no
// decoder for it): protocol, interface 2, 20 bytes, then the packet.
func TestSLL2(t *testing.T) {
	v6 := udp6DNS()
	f := SLL2(EtherTypeIPv6, v6)
	if len(f) != 20+len(v6) || !bytes.Equal(f[20:], v6) {
		t.Fatalf("length %d, want 20 + %d with the packet after", len(f), len(v6))
	}
	if p := binary.BigEndian.Uint16(f[0:]); p != EtherTypeIPv6 {
		t.Errorf("protocol %#x, want %#x", p, EtherTypeIPv6)
	}
	if i := binary.BigEndian.Uint32(f[4:]); i != 2 {
		t.Errorf("interface %d, want 2", i)
	}
	if ha := binary.BigEndian.Uint16(f[8:]); ha != 1 { // ARPHRD_ETHER
		t.Errorf("hardware type %d, want 1", ha)
	}
	if f[10] != 0 { // PACKET_HOST
		t.Errorf("packet type %d, want 0 (to this host)", f[10])
	}
	if n := f[11]; n != 6 {
		t.Errorf("address length %d, want 6", n)
	}
}

func TestARP(t *testing.T) {
	p := gopacket.NewPacket(ARP(), layers.LayerTypeEthernet, gopacket.Default)
	if p.NetworkLayer() != nil {
		t.Errorf("ARP frame has a network layer %v", p.NetworkLayer().LayerType())
	}
	if e, ok := p.LinkLayer().(*layers.Ethernet); !ok || e.EthernetType != layers.EthernetTypeARP {
		t.Errorf("not an Ethernet frame with EtherType ARP: %v", p)
	}
}

func TestEtherTypeOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    []byte
		want uint16
	}{{"ipv4", tcp4SYN(), EtherTypeIPv4}, {"ipv6", udp6DNS(), EtherTypeIPv6}, {"empty", nil, EtherTypeIPv4}} {
		if got := EtherTypeOf(tt.p); got != tt.want {
			t.Errorf("%s: %#x, want %#x", tt.name, got, tt.want)
		}
	}
}
