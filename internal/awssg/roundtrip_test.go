package awssg

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

// atom is the smallest piece of a rules file's meaning: one protocol,
// port range or ICMP type and code, and prefix, in one direction.
type atom struct {
	dir              direction.Dir
	proto            string
	lo, hi           int // ports; 0-65535 for all
	icmpType, icmpCd int // -1: every type or code; -2: not icmp
	prefix           netip.Prefix
}

// groupMeaning is what a group allows, with the description of each atom
// (of the first rule that allows it).
type groupMeaning struct {
	Name, Description string
	EgressOmitted     bool
	Atoms             map[atom]string
}

// meaning reduces f to what it allows. An egress list that is exactly
// AWS's default rule (every protocol to 0.0.0.0/0 and ::/0, without a
// description) means the same as an omitted egress, and is counted so.
func meaning(f *rules.File) []groupMeaning {
	var out []groupMeaning
	for _, g := range f.Groups {
		m := groupMeaning{Name: g.Name, Description: g.Description, EgressOmitted: g.EgressOmitted, Atoms: map[atom]string{}}
		for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
			list := g.Ingress
			if d == direction.Egress {
				list = g.Egress
			}
			for _, r := range list {
				for _, a := range atoms(d, r) {
					if _, ok := m.Atoms[a]; !ok {
						m.Atoms[a] = r.Description
					}
				}
			}
		}
		def := map[atom]string{
			{dir: direction.Egress, proto: "all", hi: 65535, icmpType: -2, icmpCd: -2, prefix: netip.MustParsePrefix(all4)}: "",
			{dir: direction.Egress, proto: "all", hi: 65535, icmpType: -2, icmpCd: -2, prefix: netip.MustParsePrefix(all6)}: "",
		}
		var egress map[atom]string = map[atom]string{}
		for a, d := range m.Atoms {
			if a.dir == direction.Egress {
				egress[a] = d
			}
		}
		if reflect.DeepEqual(egress, def) {
			for a := range def {
				delete(m.Atoms, a)
			}
			m.EgressOmitted = true
		}
		out = append(out, m)
	}
	return out
}

func atoms(d direction.Dir, r rules.Rule) []atom {
	base := atom{dir: d, proto: r.Proto.String(), hi: 65535, icmpType: -2, icmpCd: -2}
	if r.Proto.IsICMP() {
		base.icmpType, base.icmpCd = -1, -1
		if r.ICMP != nil {
			base.icmpType = int(r.ICMP.Type)
			if !r.ICMP.AnyCode {
				base.icmpCd = int(r.ICMP.Code)
			}
		}
	}
	ports := []atom{base}
	if len(r.Ports) > 0 {
		ports = nil
		for _, p := range r.Ports {
			a := base
			a.lo, a.hi = int(p.Lo), int(p.Hi)
			ports = append(ports, a)
		}
	}
	var out []atom
	for _, a := range ports {
		for _, p := range r.Prefixes {
			a.prefix = p
			out = append(out, a)
		}
	}
	return out
}

// roundTrip is import(export(f)).
func roundTrip(t *testing.T, f *rules.File) *rules.File {
	t.Helper()
	doc, _, err := Export(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := MarshalJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(data, ImportOptions{})
	if err != nil {
		t.Fatalf("import of the export: %v\n%s", err, data)
	}
	if len(res.Warnings) > 0 {
		t.Errorf("import of the export warns: %q", res.Warnings)
	}
	back, err := rules.Parse("back", res.YAML, rules.Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	return back
}

func checkRoundTrip(t *testing.T, f *rules.File, text []byte) {
	t.Helper()
	back := roundTrip(t, f)
	want, got := meaning(f), meaning(back)
	if !reflect.DeepEqual(want, got) {
		t.Errorf("import(export(x)) differs from x:\nx:\n%s\nmeaning %+v\nimport(export(x)) meaning %+v", text, want, got)
	}
}

// TestImportExportShipped: import(export(x)) means x for the shipped rules
// files.
func TestImportExportShipped(t *testing.T) {
	for _, name := range []string{"default.yaml", "office-ssh.yaml", "locked-egress.yaml"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "..", "rules", name)
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := rules.Parse(path, text, rules.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, f, text)
		})
	}
}

// TestImportExportRandom: the same on seeded random rules files.
func TestImportExportRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	for i := range 300 {
		text := randomFile(rng)
		f, err := rules.Parse(fmt.Sprintf("random-%d", i), text, rules.Options{})
		if err != nil {
			t.Fatalf("generated file %d does not parse: %v\n%s", i, err, text)
		}
		checkRoundTrip(t, f, text)
		if t.Failed() {
			return
		}
	}
}

// TestImportExportMeaningSeesChanges keeps the round-trip tests honest: meaning
// tells apart files that differ in any one respect.
func TestImportExportMeaningSeesChanges(t *testing.T) {
	base := "version: 1\ngroups:\n  - name: g\n    description: d\n    ingress:\n      - {proto: tcp, ports: 22, from: [10.0.0.0/8], description: x}\n"
	changed := []string{
		strings.Replace(base, "name: g", "name: h", 1),
		strings.Replace(base, "description: d", "description: e", 1),
		strings.Replace(base, "ports: 22", "ports: 23", 1),
		strings.Replace(base, "proto: tcp", "proto: udp", 1),
		strings.Replace(base, "10.0.0.0/8", "10.0.0.0/9", 1),
		strings.Replace(base, "description: x", "description: y", 1),
		base + "    egress: []\n",
		strings.Replace(strings.Replace(base, "ingress:", "egress:", 1), "from:", "to:", 1),
	}
	want := meaning(mustParse(t, base))
	for _, c := range changed {
		if reflect.DeepEqual(want, meaning(mustParse(t, c))) {
			t.Errorf("meaning does not tell apart:\n%s\nfrom\n%s", c, base)
		}
	}
}

func mustParse(t *testing.T, text string) *rules.File {
	t.Helper()
	f, err := rules.Parse("test", []byte(text), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// randomFile writes a random valid rules file: prefix lists, groups with
// and without egress, every protocol kind, ports, ICMP types and codes,
// descriptions, overlapping and repeated rules.
func randomFile(rng *rand.Rand) []byte {
	var b strings.Builder
	b.WriteString("version: 1\n")
	lists := map[string][]string{}
	if rng.IntN(2) == 0 {
		b.WriteString("prefix_lists:\n")
		for _, name := range []string{"office", "vpn"}[:1+rng.IntN(2)] {
			var ps []string
			for range 1 + rng.IntN(3) {
				ps = append(ps, randomPrefix(rng))
			}
			lists[name] = ps
			fmt.Fprintf(&b, "  %s: [%s]\n", name, strings.Join(ps, ", "))
		}
	}
	var listNames []string
	for n := range lists {
		listNames = append(listNames, n)
	}
	slices.Sort(listNames)
	b.WriteString("groups:\n")
	descs := []string{"", "", "ssh", "http and https", "from the office: a & b", "ping"}
	for gi := range 1 + rng.IntN(3) {
		fmt.Fprintf(&b, "  - name: group %d\n", gi)
		if d := descs[rng.IntN(len(descs))]; d != "" {
			fmt.Fprintf(&b, "    description: %s\n", scalar(d))
		}
		for _, d := range []direction.Dir{direction.Ingress, direction.Egress} {
			n := rng.IntN(5)
			if d == direction.Egress && rng.IntN(3) == 0 {
				continue // egress omitted
			}
			if n == 0 {
				fmt.Fprintf(&b, "    %s: []\n", d.Key())
				continue
			}
			fmt.Fprintf(&b, "    %s:\n", d.Key())
			for range n {
				r := randomRule(rng, listNames, descs)
				fmt.Fprintf(&b, "      - %s\n", rules.FormatRule(&r, d))
			}
		}
	}
	return []byte(b.String())
}

func randomRule(rng *rand.Rand, lists, descs []string) rules.Rule {
	protos := []string{"tcp", "udp", "icmp", "icmpv6", "all", "47", "50"}
	p, _ := rules.ParseProto(protos[rng.IntN(len(protos))])
	r := rules.Rule{Proto: p, Description: descs[rng.IntN(len(descs))]}
	switch {
	case p.HasPorts():
		for range rng.IntN(3) {
			lo := 1 + rng.IntN(65535)
			hi := lo
			if rng.IntN(2) == 0 {
				hi = lo + rng.IntN(65536-lo)
			}
			r.Ports = append(r.Ports, rules.PortRange{Lo: uint16(lo), Hi: uint16(hi)})
		}
	case p.IsICMP() && rng.IntN(3) > 0:
		r.ICMP = &rules.ICMP{Type: uint8(rng.IntN(256)), AnyCode: rng.IntN(2) == 0}
		if !r.ICMP.AnyCode {
			r.ICMP.Code = uint8(rng.IntN(256))
		}
	}
	words := []string{"any", "any4", "any6"}
	words = append(words, lists...)
	for range 1 + rng.IntN(3) {
		if rng.IntN(2) == 0 {
			r.Peers = append(r.Peers, words[rng.IntN(len(words))])
		} else {
			r.Peers = append(r.Peers, randomPrefix(rng))
		}
	}
	return r
}

// randomPrefix is a prefix of 198.18.0.0/15 or 2001:db8::/32, or a short
// one, so that prefixes repeat and overlap.
func randomPrefix(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		a := netip.AddrFrom4([4]byte{198, 18 + byte(rng.IntN(2)), byte(rng.IntN(4)), byte(rng.IntN(256))})
		return netip.PrefixFrom(a, 15+rng.IntN(18)).Masked().String()
	}
	a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(4)), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(rng.IntN(256))})
	return netip.PrefixFrom(a, 32+rng.IntN(97)).Masked().String()
}
