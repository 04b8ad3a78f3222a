package rules

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any input either decodes into a File that keeps the format's
// promises or fails with positioned errors; it never panics. An accepted
// File, written back (encodeFile) and parsed again, means the same.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob("../../rules/*.yaml")
	broken, _ := filepath.Glob("testdata/syntax/*.yaml")
	paths = append(paths, broken...)
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(rulesOf("      - {proto: tcp, ports: [80, \"1-2\"], from: [any, 1.2.3.4/8]}")))
	f.Add([]byte("version: 1\ngroups:\n  - &g {name: a}\n  - *g\n"))
	f.Add([]byte(aclOf("    - {number: 100, action: deny, proto: tcp, ports: 22, from: [203.0.113.9], expires: 2026-01-02T15:04:05+01:00}", "    - {number: 2, action: allow, proto: icmp, icmp: {type: 8}, from: [any6]}")))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f.yaml", data, Options{MaxRules: 1000})
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
			lines := lineCount(data)
			for _, e := range list {
				if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Msg == "" {
					t.Fatalf("error without a place or a message: %+v", e)
				}
				if e.Pos.Line > lines {
					t.Fatalf("error placed on line %d of a %d-line file: %v", e.Pos.Line, lines, e)
				}
			}
			if file != nil {
				t.Fatal("a File returned with errors")
			}
			return
		}
		if file.Version != 1 || len(file.Groups) == 0 {
			t.Fatalf("accepted file with version %d and %d groups", file.Version, len(file.Groups))
		}
		names := map[string]bool{}
		for _, g := range file.Groups {
			if g.Name == "" || names[g.Name] {
				t.Fatalf("empty or repeated group name %q", g.Name)
			}
			names[g.Name] = true
			for _, r := range append(append([]Rule(nil), g.Ingress...), g.Egress...) {
				if len(r.Prefixes) == 0 {
					t.Fatalf("rule without peers: %+v", r)
				}
				if len(r.Ports) > 0 && !r.Proto.HasPorts() || r.ICMP != nil && !r.Proto.IsICMP() {
					t.Fatalf("ports or icmp on the wrong protocol: %+v", r)
				}
				for _, p := range r.Ports {
					if p.Lo > p.Hi {
						t.Fatalf("inverted range %v", p)
					}
				}
				for _, p := range r.Prefixes {
					if p != p.Masked() {
						t.Fatalf("prefix %v not canonical", p)
					}
				}
			}
		}
		checkRoundTrip(t, file)
	})
}
