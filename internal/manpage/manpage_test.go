package manpage

import (
	"flag"
	"strings"
	"testing"
)

func TestFlagItems(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("rules", "/etc/fwd/rules.yaml", "rules `file`")
	fs.Bool("fail-open", false, "accept new connections\nwhile fwd is down")
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	items, err := FlagItems(b.String())
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{"--fail-open", "accept new connections while fwd is down"},
		{"--rules file", `rules file (default "/etc/fwd/rules.yaml")`},
	}
	if len(items) != len(want) {
		t.Fatalf("items %q, want %q", items, want)
	}
	for i := range want {
		if items[i] != want[i] {
			t.Errorf("item %d: %q, want %q", i, items[i], want[i])
		}
	}
	if _, err := FlagItems("usage: x\n"); err == nil {
		t.Error("a line that is no flag was taken")
	}
}

func TestWriteEscapes(t *testing.T) {
	var b strings.Builder
	p := Page{Name: "fwd", Section: 8, Summary: "a firewall", Manual: "System Manager's Manual",
		Synopsis: []string{"fwd [--rules FILE]"},
		Sections: []Section{{Title: "Description", Paras: []string{".starts with a dot", `a \ backslash`},
			Items: []Item{{"--rules file", "the rules"}}}}}
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".TH FWD 8 ", ".SH NAME\nfwd \\- a firewall\n", "fwd [\\-\\-rules FILE]\n",
		"\\&.starts with a dot\n", "a \\e backslash", ".TP\n.B \\-\\-rules file\nthe rules\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("page lacks %q:\n%s", want, b.String())
		}
	}
}
