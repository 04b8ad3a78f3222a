package rules

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/types/direction"
)

// TestEditsKeepCRLF: an edit of a file whose lines end in "\r\n" gives
// every new and changed line "\r\n" too, and otherwise makes the same
// edit as on the "\n" file; a "\n" file gets no "\r".
func TestEditsKeepCRLF(t *testing.T) {
	flow := "version: 1\n# the only group\ngroups: [{name: local, ingress: [{proto: tcp, ports: 1, from: [any]}]}]\n"
	type edit func(data []byte) ([]byte, error)
	add := func(group string, dir direction.Dir, r Rule) edit {
		return func(data []byte) ([]byte, error) {
			return AddRules("edit.yaml", data, group, dir, []Rule{r}, Options{})
		}
	}
	del := func(refs ...RuleRef) edit {
		return func(data []byte) ([]byte, error) { return DeleteRules("edit.yaml", data, refs, Options{}) }
	}
	tests := []struct {
		name string
		in   string
		edit edit
	}{
		{"add to a list", editBase, add("local", direction.Ingress, tcp(PortRange{443, 443}))},
		{"add after a multi-line rule", editBase, add("web", direction.Ingress, tcp(PortRange{22, 22}))},
		{"add to an empty list", editBase, add("local", direction.Egress, Rule{Proto: Proto{All: true}, Peers: []string{"any"}})},
		{"add a group", editBase, add("new", direction.Ingress, tcp(PortRange{8443, 8443}))},
		{"add to a flow list (encoded again)", flow, add("local", direction.Ingress, tcp(PortRange{2, 2}))},
		{"delete a multi-line rule", editBase, del(RuleRef{Group: 0, Dir: direction.Ingress, Index: 1})},
		{"delete the last rule of a list", editBase, del(RuleRef{Group: 1, Dir: direction.Ingress, Index: 0})},
		{"delete from two lists", editBase, del(RuleRef{Group: 0, Dir: direction.Egress, Index: 0}, RuleRef{Group: 0, Dir: direction.Ingress, Index: 0})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lf, err := tt.edit([]byte(tt.in))
			if err != nil {
				t.Fatalf("edit of the \\n file: %v", err)
			}
			if bytes.Contains(lf, []byte("\r")) {
				t.Errorf("edit of the \\n file wrote \\r:\n%q", lf)
			}
			crlf, err := tt.edit([]byte(strings.ReplaceAll(tt.in, "\n", "\r\n")))
			if err != nil {
				t.Fatalf("edit of the \\r\\n file: %v", err)
			}
			if n, m := bytes.Count(crlf, []byte("\n")), bytes.Count(crlf, []byte("\r\n")); n != m {
				t.Errorf("%d of %d lines end in \\n alone:\n%q", n-m, n, crlf)
			}
			if got := bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n")); !bytes.Equal(got, lf) {
				t.Errorf("the \\r\\n edit differs from the \\n edit:\n%s\nwant:\n%s", got, lf)
			}
		})
	}
}

func TestToCRLF(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a"},
		{"\n", "\r\n"},
		{"a\nb\r\nc\n", "a\r\nb\r\nc\r\n"},
		{"a\r\n\n", "a\r\n\r\n"},
	}
	for _, tt := range tests {
		if got := string(toCRLF([]byte(tt.in))); got != tt.want {
			t.Errorf("toCRLF(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for in, want := range map[string]bool{"": false, "a": false, "a\r\n": true, "a\r\nb": true, "a\r\nb\n": false, "a\n": false} {
		if got := allCRLF([]byte(in)); got != want {
			t.Errorf("allCRLF(%q) = %v, want %v", in, got, want)
		}
	}
}
