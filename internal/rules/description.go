package rules

import (
	"fmt"
	"strings"
)

// maxText is the longest name or description, in bytes.
const maxText = 255

// CheckDescription checks a rule's description as every input takes it
// (the rules file, the API, fwctl's comment): at most 255 bytes of
// printable text.
func CheckDescription(s string) error {
	return checkText("description", s)
}

// checkText checks a name or description; what names it in the error.
func checkText(what, s string) error {
	if len(s) > maxText {
		return fmt.Errorf("%s is %d bytes long: expected at most %d", what, len(s), maxText)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%s holds a control character: expected printable text", what)
	}
	return nil
}
