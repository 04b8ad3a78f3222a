package kernel

import (
	"slices"
	"strings"
)

// DNAT is one port a container runtime (or anyone) published: a DNAT rule
// of the nat table, as iptables-save prints it. Docker writes them in its
// DOCKER chain, netavark in NETAVARK-HOSTPORT-DNAT and NETAVARK-DN-*, CNI
// in CNI-DN-*.
type DNAT struct {
	Family Family
	Chain  string
	// Proto is the -p of the rule ("tcp", "udp"), "" for every protocol.
	Proto string
	// Ports is the --dport or --dports of the rule as printed ("8080",
	// "8000:8010", "80,443"), "" for every port.
	Ports string
	// Dest is the -d of the rule (the host address the port is published
	// on), "" for every local address.
	Dest string
	// In is the -i of the rule, with "!" when negated ("!docker0").
	In string
	// To is the --to-destination: the container's address and port.
	To string
}

// PublishedPorts lists the DNAT rules of the nat table in cur, in order.
func PublishedPorts(fam Family, cur Tables) []DNAT {
	nat := cur["nat"]
	if nat == nil {
		return nil
	}
	var out []DNAT
	for _, r := range nat.Rules {
		if r.Target != "DNAT" {
			continue
		}
		out = append(out, parseDNAT(fam, r))
	}
	return out
}

func parseDNAT(fam Family, r Rule) DNAT {
	d := DNAT{Family: fam, Chain: r.Chain}
	f := strings.Fields(r.Spec)
	not := false
	for i := 1; i < len(f); i++ {
		arg := ""
		if i+1 < len(f) {
			arg = f[i+1]
		}
		switch f[i] {
		case "!":
			not = true
			continue
		case "-p", "--protocol":
			d.Proto = arg
		case "--dport", "--dports", "--destination-port":
			d.Ports = arg
		case "-d", "--destination":
			d.Dest = strings.TrimSuffix(strings.TrimSuffix(arg, "/32"), "/128")
		case "-i", "--in-interface":
			d.In = arg
			if not {
				d.In = "!" + arg
			}
		case "--to-destination":
			d.To = arg
		}
		not = false
	}
	return d
}

// PortRanges returns d's ports as ranges (lo, hi); nil for every port or
// a text it cannot read.
func (d DNAT) PortRanges() [][2]uint16 {
	if d.Ports == "" {
		return nil
	}
	var out [][2]uint16
	for p := range strings.SplitSeq(d.Ports, ",") {
		lo, hi, ok := strings.Cut(p, ":")
		if !ok {
			hi = lo
		}
		l, errL := parsePort(lo)
		h, errH := parsePort(hi)
		if !errL || !errH || l > h {
			return nil
		}
		out = append(out, [2]uint16{l, h})
	}
	return slices.Clip(out)
}

func parsePort(s string) (uint16, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return uint16(n), n <= 0xffff
}
