package awssg

import (
	"errors"
	"os"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
)

// FuzzImport: Import never panics; what it accepts validates; what it
// refuses is refused with a JSON path or a line and column. The seed
// corpus is in testdata/fuzz/FuzzImport, plus the fixtures.
func FuzzImport(f *testing.F) {
	for _, name := range []string{"describe-security-groups.json", "describe-security-group-rules.json"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Import(data, ImportOptions{PrefixLists: corporate})
		if err != nil {
			var pe *PathError
			var se *SyntaxError
			switch {
			case errors.As(err, &pe):
				if pe.Path == "" {
					t.Fatalf("an error without a path: %v", err)
				}
			case errors.As(err, &se):
				if se.Line < 1 || se.Col < 1 {
					t.Fatalf("a syntax error without a place: %v", err)
				}
			default:
				t.Fatalf("error %T without a path: %v", err, err)
			}
			return
		}
		if _, err := rules.Parse("imported", res.YAML, rules.Options{}); err != nil {
			t.Fatalf("the imported file does not validate: %v\n%s", err, res.YAML)
		}
	})
}
