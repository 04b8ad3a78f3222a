package rules

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fwd-project/fwd/internal/types/direction"
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

// FuzzEdit: on any valid file, adding a rule yields a valid file with
// one more rule (or a refusal with a reason), and deleting rule 1 one
// with one fewer; neither ever panics.
func FuzzEdit(f *testing.F) {
	paths, _ := filepath.Glob("../../rules/*.yaml")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, "local", false)
		}
	}
	f.Add([]byte(editBase), "web", true)
	f.Add([]byte("version: 1\ngroups: [{name: a, ingress: [{proto: tcp, from: any}]}]\n"), "a", false)
	f.Add([]byte("version: 1\ngroups:\n- name: a\n  ingress:\n  - proto: tcp\n    from:\n    - any\n  egress: []\n"), "a", true)
	f.Fuzz(func(t *testing.T, data []byte, group string, egress bool) {
		before, err := Parse("f.yaml", data, Options{MaxRules: 1000})
		if err != nil || group == "" {
			return
		}
		dir := direction.Ingress
		if egress {
			dir = direction.Egress
		}
		r := Rule{Proto: Proto{Num: ipproto.TCP}, Ports: []PortRange{{8080, 8081}}, Peers: []string{"2001:db8::"}, Description: "fuzz: x"}
		out, err := AddRules("f.yaml", data, group, dir, []Rule{r}, Options{MaxRules: 1001})
		var list ErrorList
		switch {
		case errors.Is(err, ErrEgressOmitted), errors.As(err, &list):
		case err != nil:
			// The tree is not what the decoder accepted (e.g. a group name
			// that is not a plain scalar): a plain error is fine.
		default:
			after, perr := Parse("f.yaml", out, Options{MaxRules: 1001})
			if perr != nil {
				t.Fatalf("added file does not parse: %v\n%s", perr, out)
			}
			if after.NumRules() != before.NumRules()+1 {
				t.Fatalf("added one rule: %d -> %d\n%s", before.NumRules(), after.NumRules(), out)
			}
		}
		if before.NumRules() == 0 {
			return
		}
		out, err = DeleteRules("f.yaml", data, before.Numbered()[:1], Options{MaxRules: 1000})
		if err != nil {
			return
		}
		after, perr := Parse("f.yaml", out, Options{MaxRules: 1000})
		if perr != nil {
			t.Fatalf("file after delete does not parse: %v\n%s", perr, out)
		}
		if after.NumRules() != before.NumRules()-1 {
			t.Fatalf("deleted one rule: %d -> %d\n%s", before.NumRules(), after.NumRules(), out)
		}
	})
}
