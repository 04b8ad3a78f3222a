package rules

import (
	"net/netip"
	"testing"
)

// TestParsePrefix is the one address parser every input uses: the rules
// file, the API, fwctl's ufw grammar.
func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in       string
		want     string // the prefix, or "" for an error
		hostBits bool
		err      string
	}{
		{in: "198.51.100.7", want: "198.51.100.7/32"},
		{in: "2001:db8::1", want: "2001:db8::1/128"},
		{in: "198.51.100.0/24", want: "198.51.100.0/24"},
		{in: "198.51.100.7/24", want: "198.51.100.0/24", hostBits: true},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "2001:db8::1/32", want: "2001:db8::/32", hostBits: true},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "192.168.0.0/0", want: "0.0.0.0/0", hostBits: true},
		// Dotted netmasks, as ufw takes them.
		{in: "10.0.0.0/255.255.255.0", want: "10.0.0.0/24"},
		{in: "10.1.2.3/255.255.0.0", want: "10.1.0.0/16", hostBits: true},
		{in: "10.0.0.1/255.255.255.255", want: "10.0.0.1/32"},
		{in: "10.0.0.0/255.255.255.252", want: "10.0.0.0/30"},
		{in: "10.0.0.0/128.0.0.0", want: "0.0.0.0/1", hostBits: true},
		{in: "128.0.0.0/128.0.0.0", want: "128.0.0.0/1"},
		{in: "0.0.0.0/0.0.0.0", want: "0.0.0.0/0"},
		{in: "10.0.0.0/255.0.255.255", err: `bad mask "/255.0.255.255" in "10.0.0.0/255.0.255.255": not contiguous, and a security group holds prefixes only (expected a netmask such as 255.255.255.0)`},
		{in: "10.0.0.0/0.255.255.255", err: `bad mask "/0.255.255.255" in "10.0.0.0/0.255.255.255": not contiguous, and a security group holds prefixes only (expected a netmask such as 255.255.255.0)`},
		{in: "10.0.0.0/255.255.255.1", err: `bad mask "/255.255.255.1" in "10.0.0.0/255.255.255.1": not contiguous, and a security group holds prefixes only (expected a netmask such as 255.255.255.0)`},
		{in: "10.0.0.0/255.255.0", err: `bad mask "/255.255.0" in "10.0.0.0/255.255.0": expected /0 to /32 or a netmask such as /255.255.255.0`},
		{in: "2001:db8::/255.255.0.0", err: `bad mask "/255.255.0.0" in "2001:db8::/255.255.0.0": expected /0 to /128`},
		{in: "10.0.0.0/ffff::", err: `bad mask "/ffff::" in "10.0.0.0/ffff::": expected /0 to /32 or a netmask such as /255.255.255.0`},
		// Lengths.
		{in: "10.0.0.0/33", err: `bad mask "/33" in "10.0.0.0/33": expected /0 to /32 or a netmask such as /255.255.255.0`},
		{in: "2001:db8::/129", err: `bad mask "/129" in "2001:db8::/129": expected /0 to /128`},
		{in: "10.0.0.0/", err: `bad mask "/" in "10.0.0.0/": expected /0 to /32 or a netmask such as /255.255.255.0`},
		{in: "10.0.0.0/+8", err: `bad mask "/+8" in "10.0.0.0/+8": expected /0 to /32 or a netmask such as /255.255.255.0`},
		{in: "10.0.0.0/08", err: `bad mask "/08" in "10.0.0.0/08": expected /0 to /32 or a netmask such as /255.255.255.0`},
		{in: "10.0.0.0/-1", err: `bad mask "/-1" in "10.0.0.0/-1": expected /0 to /32 or a netmask such as /255.255.255.0`},
		{in: "10.0.0.0/99999999999999999999", err: `bad mask "/99999999999999999999" in "10.0.0.0/99999999999999999999": expected /0 to /32 or a netmask such as /255.255.255.0`},
		{in: "10.0.0.0/8/8", err: `bad mask "/8/8" in "10.0.0.0/8/8": expected /0 to /32 or a netmask such as /255.255.255.0`},
		// Addresses.
		{in: "1.2.3", err: `bad address "1.2.3": expected a CIDR, an address, a prefix list name or any`},
		{in: "", err: `bad address "": expected a CIDR, an address, a prefix list name or any`},
		{in: "1.2.3/24", err: `bad CIDR "1.2.3/24": expected an address/length such as 198.51.100.0/24 or 2001:db8::/32`},
		{in: "fe80::1%eth0", err: `bad address "fe80::1%eth0": zones are not allowed`},
		{in: "fe80::1%eth0/64", err: `bad CIDR "fe80::1%eth0/64": zones are not allowed`},
		{in: "::ffff:198.51.100.7", err: `bad address "::ffff:198.51.100.7": IPv4-mapped IPv6; write the IPv4 address`},
		{in: "::ffff:198.51.100.0/120", err: `bad CIDR "::ffff:198.51.100.0/120": IPv4-mapped IPv6; write the IPv4 CIDR`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, hostBits, err := ParsePrefix(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("ParsePrefix(%q) = %v, %v; want error %s", tt.in, p, err, tt.err)
				}
				if _, err := ParsePeer(tt.in); err == nil || err.Error() != tt.err {
					t.Errorf("ParsePeer(%q) error %v; want %s", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || p.String() != tt.want || hostBits != tt.hostBits {
				t.Fatalf("ParsePrefix(%q) = %v, host bits %v, %v; want %s, host bits %v", tt.in, p, hostBits, err, tt.want, tt.hostBits)
			}
			if q, err := ParsePeer(tt.in); err != nil || q != p {
				t.Errorf("ParsePeer(%q) = %v, %v; want %v", tt.in, q, err, p)
			}
		})
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "198.51.100.7", want: "198.51.100.7"},
		{in: "2001:db8::1", want: "2001:db8::1"},
		{in: "1.2.3", err: `bad address "1.2.3": expected an IPv4 or IPv6 address`},
		{in: "198.51.100.0/24", err: `bad address "198.51.100.0/24": expected an IPv4 or IPv6 address`},
		{in: "fe80::1%eth0", err: `bad address "fe80::1%eth0": zones are not allowed`},
		{in: "::ffff:198.51.100.7", err: `bad address "::ffff:198.51.100.7": IPv4-mapped IPv6; write the IPv4 address`},
	}
	for _, tt := range tests {
		a, err := ParseAddr(tt.in)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("ParseAddr(%q) = %v, %v; want error %s", tt.in, a, err, tt.err)
		case tt.err == "" && (err != nil || a != netip.MustParseAddr(tt.want)):
			t.Errorf("ParseAddr(%q) = %v, %v; want %s", tt.in, a, err, tt.want)
		}
	}
}

// TestNetmaskInRulesFile: a dotted netmask is a prefix in the rules file
// too, a host-bits one canonicalized with the usual warning.
func TestNetmaskInRulesFile(t *testing.T) {
	src := "version: 1\nprefix_lists:\n  lan: [192.168.1.7/255.255.255.0]\ngroups:\n  - name: a\n    ingress:\n      - {proto: tcp, ports: 22, from: [10.0.0.0/255.255.255.0, lan]}\n"
	f, err := Parse("m.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := f.Groups[0].Ingress[0].Prefixes
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("192.168.1.0/24")}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("prefixes %v, want %v", got, want)
	}
	if len(f.Warnings) != 1 || f.Warnings[0].Error() != "m.yaml:3:9: CIDR 192.168.1.7/255.255.255.0 has host bits set: using 192.168.1.0/24" {
		t.Errorf("warnings %v", f.Warnings)
	}
}

// FuzzParsePrefix: whatever ParsePrefix accepts is a canonical prefix
// that reads back as itself.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"198.51.100.7", "198.51.100.7/24", "10.0.0.0/255.255.255.0", "10.0.0.0/255.0.255.255", "2001:db8::/32", "::ffff:1.2.3.4", "fe80::1%eth0/64", "10.0.0.0/08"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, _, err := ParsePrefix(s)
		if err != nil {
			return
		}
		if p != p.Masked() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			t.Fatalf("ParsePrefix(%q) = %v: not canonical", s, p)
		}
		q, hostBits, err := ParsePrefix(p.String())
		if err != nil || q != p || hostBits {
			t.Fatalf("ParsePrefix(%q) = %v, but %v reads as %v, %v, %v", s, p, p, q, hostBits, err)
		}
	})
}
