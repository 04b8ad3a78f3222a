package filter

import (
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
	"gopkg.in/yaml.v3"
)

// BenchmarkLoad splits loading a rules file (what fwctl validate does
// after reading it) into its steps, for the 10k-rule files:
//
//   - yaml-node: yaml.v3's own parse into a yaml.Node tree, the floor
//     for any decoder built on yaml.v3;
//   - parse: rules.Parse (yaml.v3's parse, then decoding, validation,
//     rule IDs);
//   - compile: filter.Compile of the parsed file.
//
// parse minus yaml-node is fwd's own share of the decode.
//
//	go test -run '^$' -bench Load ./internal/filter
func BenchmarkLoad(b *testing.B) {
	for _, bt := range benchTables(b) {
		if !strings.HasSuffix(bt.name, "10000") && !strings.HasSuffix(bt.name, "_10k") {
			continue
		}
		b.Run(bt.name+"/yaml-node", func(b *testing.B) {
			for b.Loop() {
				var n yaml.Node
				if err := yaml.Unmarshal(bt.yaml, &n); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bt.name+"/parse", func(b *testing.B) {
			for b.Loop() {
				if _, err := rules.Parse("bench.yaml", bt.yaml, rules.Options{MaxRules: 1 << 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bt.name+"/compile", func(b *testing.B) {
			f, err := rules.Parse("bench.yaml", bt.yaml, rules.Options{MaxRules: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Compile(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
