package rules

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// editBase is a hand-written file: comments, blank lines, aligned
// comments and mixed styles must survive every edit.
const editBase = `# host rules
version: 1
prefix_lists:
  office: [203.0.113.0/24]   # the office

groups:
  # the web front door
  - name: web
    ingress:
      - {proto: tcp, ports: [80, 443], from: [any]}   # http(s)

      # ssh from the office only
      - proto: tcp
        ports: 22
        from: [office]
        description: >-
          ssh for people
          in the office
    egress:
      - {proto: udp, ports: 53, to: [any]}
  - name: local
    description: rules added with fwctl
    ingress:
      - {proto: tcp, ports: 8080, from: [any]}
    egress: []

# end of file
`

func tcp(ports ...PortRange) Rule {
	return Rule{Proto: Proto{Num: ipproto.TCP}, Ports: ports, Peers: []string{"any"}}
}

func mustParse(t *testing.T, data []byte) *File {
	t.Helper()
	f, err := Parse("edit.yaml", data, Options{})
	if err != nil {
		t.Fatalf("result does not parse: %v\n%s", err, data)
	}
	return f
}

func TestAddRulesSplices(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		group string
		dir   direction.Dir
		rules []Rule
		// want is the whole resulting file: the edit must be a splice that
		// leaves every other byte alone.
		want string
	}{
		{
			name: "append to existing local", in: editBase, group: "local", dir: direction.Ingress,
			rules: []Rule{tcp(PortRange{443, 443})},
			want: strings.Replace(editBase, "      - {proto: tcp, ports: 8080, from: [any]}\n",
				"      - {proto: tcp, ports: 8080, from: [any]}\n      - {proto: tcp, ports: 443, from: [any]}\n", 1),
		},
		{
			name: "append after a multi-line rule", in: editBase, group: "web", dir: direction.Ingress,
			rules: []Rule{{Proto: Proto{Num: ipproto.UDP}, Ports: []PortRange{{6000, 6007}}, Peers: []string{"office"}, Description: "x: y"}},
			want: strings.Replace(editBase, "          in the office\n",
				"          in the office\n      - {proto: udp, ports: 6000-6007, from: [office], description: 'x: y'}\n", 1),
		},
		{
			name: "egress to a restricted group", in: editBase, group: "local", dir: direction.Egress,
			rules: []Rule{{Proto: Proto{Num: ipproto.UDP}, Ports: []PortRange{{53, 53}}, Peers: []string{"2001:db8::"}}},
			want: strings.Replace(editBase, "    egress: []\n",
				"    egress:\n      - {proto: udp, ports: 53, to: ['2001:db8::']}\n", 1),
		},
		{
			name: "new group keeps egress closed", in: strings.Replace(editBase, "  - name: local\n    description: rules added with fwctl\n    ingress:\n      - {proto: tcp, ports: 8080, from: [any]}\n    egress: []\n", "", 1),
			group: "local", dir: direction.Ingress, rules: []Rule{tcp(PortRange{443, 443}), {Proto: Proto{Num: ipproto.ICMP}, ICMP: &ICMP{Type: 8, AnyCode: true}, Peers: []string{"any"}}},
			want: strings.Replace(editBase, "      - {proto: tcp, ports: 8080, from: [any]}\n",
				"      - {proto: tcp, ports: 443, from: [any]}\n      - {proto: icmp, icmp: {type: 8}, from: [any]}\n", 1),
		},
		{
			name: "key without value", in: "version: 1\ngroups:\n  - name: local\n    ingress:\n    egress: []\n",
			group: "local", dir: direction.Ingress, rules: []Rule{tcp()},
			want: "version: 1\ngroups:\n  - name: local\n    ingress:\n      - {proto: tcp, from: [any]}\n    egress: []\n",
		},
		{
			name: "missing key", in: "version: 1\ngroups:\n  - name: local  # mine\n    egress: []   # closed\n\n# bye\n",
			group: "local", dir: direction.Ingress, rules: []Rule{tcp(PortRange{1, 2}, PortRange{5, 5})},
			want: "version: 1\ngroups:\n  - name: local  # mine\n    egress: []   # closed\n    ingress:\n      - {proto: tcp, ports: [1-2, 5], from: [any]}\n\n# bye\n",
		},
		{
			name: "compact sequences", in: "version: 1\ngroups:\n- name: local\n  ingress:\n  - {proto: tcp, from: [any]}\n  egress: []\n",
			group: "local", dir: direction.Ingress, rules: []Rule{tcp(PortRange{22, 22})},
			want: "version: 1\ngroups:\n- name: local\n  ingress:\n  - {proto: tcp, from: [any]}\n  - {proto: tcp, ports: 22, from: [any]}\n  egress: []\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := mustParse(t, []byte(tc.in))
			got, err := AddRules("edit.yaml", []byte(tc.in), tc.group, tc.dir, tc.rules, Options{})
			if err != nil {
				t.Fatalf("AddRules: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			after := mustParse(t, got)
			if after.NumRules() != before.NumRules()+len(tc.rules) {
				t.Errorf("rules %d -> %d, want +%d", before.NumRules(), after.NumRules(), len(tc.rules))
			}
		})
	}
}

func TestAddRulesFallsBackToEncoding(t *testing.T) {
	// A flow-style list of rules cannot be spliced line by line: the file
	// is encoded again (comments kept) and still holds every rule.
	in := "version: 1\n# the only group\ngroups: [{name: local, ingress: [{proto: tcp, ports: 1, from: [any]}]}]\n"
	got, err := AddRules("edit.yaml", []byte(in), "local", direction.Ingress, []Rule{tcp(PortRange{2, 2})}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := mustParse(t, got)
	if n := len(f.Groups[0].Ingress); n != 2 || f.Groups[0].Ingress[1].Ports[0] != (PortRange{2, 2}) {
		t.Fatalf("got %d rules:\n%s", n, got)
	}
	if !bytes.Contains(got, []byte("# the only group")) {
		t.Errorf("comment lost:\n%s", got)
	}
}

func TestAddRulesRefusals(t *testing.T) {
	open := "version: 1\ngroups:\n  - name: local\n    ingress: []\n"
	_, err := AddRules("edit.yaml", []byte(open), "local", direction.Egress, []Rule{tcp()}, Options{})
	if !errors.Is(err, ErrEgressOmitted) {
		t.Errorf("egress rule to a group omitting egress: err = %v, want ErrEgressOmitted", err)
	}
	bad := Rule{Proto: Proto{Num: ipproto.TCP}, Peers: []string{"nosuchlist"}}
	_, err = AddRules("edit.yaml", []byte(editBase), "local", direction.Ingress, []Rule{bad}, Options{})
	var list ErrorList
	if !errors.As(err, &list) || !strings.Contains(err.Error(), `undefined prefix list "nosuchlist"`) {
		t.Errorf("undefined prefix list: err = %v, want an ErrorList naming it", err)
	}
	_, err = AddRules("edit.yaml", []byte(editBase), "local", direction.Ingress, []Rule{tcp(), tcp()}, Options{MaxRules: 5})
	if !errors.As(err, &list) {
		t.Errorf("rule limit: err = %v, want an ErrorList", err)
	}
}

func TestNewGroupForEgressOmitsNothing(t *testing.T) {
	// Only the egress rule is added: the new group has no ingress and its
	// egress list holds just that rule.
	in := "version: 1\ngroups:\n  - name: web\n    ingress: []\n    egress: []\n"
	got, err := AddRules("edit.yaml", []byte(in), "local", direction.Egress, []Rule{{Proto: Proto{Num: ipproto.UDP}, Ports: []PortRange{{53, 53}}, Peers: []string{"any"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := mustParse(t, got)
	g := f.Groups[1]
	if g.Name != "local" || g.EgressOmitted || len(g.Egress) != 1 || len(g.Ingress) != 0 {
		t.Fatalf("new group = %+v\n%s", g, got)
	}
	// And for an ingress rule the new group must not open egress.
	got, err = AddRules("edit.yaml", []byte(in), "local", direction.Ingress, []Rule{tcp()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g := mustParse(t, got).Groups[1]; g.EgressOmitted {
		t.Fatalf("new group omits egress (opens all outbound):\n%s", got)
	}
}

func TestDeleteRules(t *testing.T) {
	f := mustParse(t, []byte(editBase))
	num := f.Numbered()
	// web: in 0, in 1, out 0; local: in 0.
	if len(num) != 4 || num[2] != (RuleRef{0, direction.Egress, 0}) || num[3] != (RuleRef{1, direction.Ingress, 0}) {
		t.Fatalf("numbered = %+v", num)
	}
	tests := []struct {
		name string
		refs []RuleRef
		want string
	}{
		{"first", []RuleRef{num[0]}, strings.Replace(editBase, "      - {proto: tcp, ports: [80, 443], from: [any]}   # http(s)\n", "", 1)},
		{"multi-line with its block", []RuleRef{num[1]}, strings.Replace(editBase, "      - proto: tcp\n        ports: 22\n        from: [office]\n        description: >-\n          ssh for people\n          in the office\n", "", 1)},
		{"last of a list", []RuleRef{num[3]}, strings.Replace(editBase, "    ingress:\n      - {proto: tcp, ports: 8080, from: [any]}\n", "    ingress: []\n", 1)},
		{"both of a list", []RuleRef{num[1], num[0]}, strings.Replace(editBase, "    ingress:\n      - {proto: tcp, ports: [80, 443], from: [any]}   # http(s)\n\n      # ssh from the office only\n      - proto: tcp\n        ports: 22\n        from: [office]\n        description: >-\n          ssh for people\n          in the office\n", "    ingress: []\n\n      # ssh from the office only\n", 1)},
		{"egress keeps its key", []RuleRef{num[2]}, strings.Replace(editBase, "    egress:\n      - {proto: udp, ports: 53, to: [any]}\n", "    egress: []\n", 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DeleteRules("edit.yaml", []byte(editBase), tc.refs, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			after := mustParse(t, got)
			if after.NumRules() != f.NumRules()-len(tc.refs) {
				t.Errorf("%d rules left, want %d", after.NumRules(), f.NumRules()-len(tc.refs))
			}
			if tc.name == "egress keeps its key" && after.Groups[0].EgressOmitted {
				t.Errorf("deleting the last egress rule opened all outbound")
			}
		})
	}
	if _, err := DeleteRules("edit.yaml", []byte(editBase), []RuleRef{{0, direction.Egress, 5}}, Options{}); err == nil {
		t.Errorf("deleting a rule that does not exist: no error")
	}
}

func TestDeleteFlowFallsBack(t *testing.T) {
	in := "version: 1\ngroups:\n  - {name: a, ingress: [{proto: tcp, ports: 1, from: [any]}, {proto: tcp, ports: 2, from: [any]}]}\n"
	got, err := DeleteRules("edit.yaml", []byte(in), []RuleRef{{0, direction.Ingress, 0}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := mustParse(t, got)
	if len(f.Groups[0].Ingress) != 1 || f.Groups[0].Ingress[0].Ports[0].Lo != 2 {
		t.Fatalf("got\n%s", got)
	}
}

func TestSameTraffic(t *testing.T) {
	f := mustParse(t, []byte(editBase))
	resolve := func(r Rule) Rule {
		p, err := f.ResolvePeers(r.Peers)
		if err != nil {
			t.Fatal(err)
		}
		r.Prefixes = p
		return r
	}
	web0 := &f.Groups[0].Ingress[0]
	tests := []struct {
		r    Rule
		want bool
	}{
		{resolve(tcp(PortRange{443, 443}, PortRange{80, 80})), true},
		{resolve(Rule{Proto: Proto{Num: ipproto.TCP}, Ports: []PortRange{{80, 80}, {443, 443}}, Peers: []string{"any4", "::/0"}}), true},
		{resolve(tcp(PortRange{80, 80})), false},
		{resolve(Rule{Proto: Proto{Num: ipproto.UDP}, Ports: []PortRange{{80, 80}, {443, 443}}, Peers: []string{"any"}}), false},
		{resolve(Rule{Proto: Proto{Num: ipproto.TCP}, Ports: []PortRange{{80, 80}, {443, 443}}, Peers: []string{"any4"}}), false},
	}
	for i, tc := range tests {
		if got := web0.SameTraffic(&tc.r); got != tc.want {
			t.Errorf("%d: %s same as %s = %v, want %v", i, tc.r.String(), web0.String(), got, tc.want)
		}
	}
	ssh := resolve(Rule{Proto: Proto{Num: ipproto.TCP}, Ports: []PortRange{{22, 22}}, Peers: []string{"203.0.113.7/24"}})
	if !f.Groups[0].Ingress[1].SameTraffic(&ssh) {
		t.Errorf("office list and its CIDR (host bits set) should match")
	}
	if _, err := f.ResolvePeers([]string{"1.2.3"}); err == nil {
		t.Errorf("bad address resolved")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "new\n" || fi.Mode().Perm() != 0o640 {
		t.Errorf("after write: %q mode %v, want \"new\\n\" 0640", got, fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// TestWriteFileAtomicFailureKeepsOld: when the new file cannot be put in
// place (here the target is a directory, so the rename fails after the
// data was written and synced, the moment a crash would hit), the old
// content is what a reader sees and no temporary file stays.
func TestWriteFileAtomicFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "rules.yaml")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(target, []byte("new\n")); err == nil {
		t.Fatal("write over a non-empty directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !ents[0].IsDir() {
		t.Errorf("directory after a failed write: %v", ents)
	}
	// A crash after the temporary file is written but before the rename
	// leaves a stray temporary file beside the untouched old file: the old
	// file is still what Load reads.
	old := filepath.Join(dir, "old.yaml")
	good := "version: 1\ngroups:\n  - name: a\n"
	if err := os.WriteFile(old, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".old.yaml.tmp-123"), []byte("version: 1\ngroups:\n  - na"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(old, Options{}); err != nil {
		t.Errorf("old file after a crash: %v", err)
	}
}

// TestWriteFileAtomicReaders: readers racing a writer only ever see one
// whole version of the file.
func TestWriteFileAtomicReaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	a := bytes.Repeat([]byte("a"), 64<<10)
	b := bytes.Repeat([]byte("b"), 80<<10)
	if err := os.WriteFile(path, a, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	var mu sync.Mutex
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := os.ReadFile(path)
				if err != nil || !bytes.Equal(got, a) && !bytes.Equal(got, b) {
					mu.Lock()
					bad = append(bad, func() string {
						if err != nil {
							return err.Error()
						}
						return "torn read"
					}())
					mu.Unlock()
				}
			}
		}()
	}
	for i := range 100 {
		data := a
		if i%2 == 0 {
			data = b
		}
		if err := WriteFileAtomic(path, data); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d bad reads, first: %s", len(bad), bad[0])
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	for _, name := range []string{"rules.yaml", ".rules.yaml.tmp-123", ".rules.yaml.tmp-456", ".other.yaml.tmp-1", "rules.yaml.bak"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := RemoveStaleTemps(path)
	if err != nil || n != 2 {
		t.Fatalf("RemoveStaleTemps = %d, %v; want 2 removed", n, err)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != ".other.yaml.tmp-1 rules.yaml rules.yaml.bak" {
		t.Errorf("left %v; want .other.yaml.tmp-1, rules.yaml and rules.yaml.bak", left)
	}
}
