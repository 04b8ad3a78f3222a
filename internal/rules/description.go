package rules

import "fmt"

// CheckDescription checks a rule's description as the API and fwctl's
// comment take it: CheckText's rules, the error prefixed "bad
// description". (The rules file reports CheckText's error at its place.)
func CheckDescription(s string) error {
	if err := CheckText("description", s); err != nil {
		return fmt.Errorf("bad description: %w", err)
	}
	return nil
}
