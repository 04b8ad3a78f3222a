package rules

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxTextLen is the longest group name or description, in characters
// (Unicode code points), wherever one is given: the rules file, the
// control API, fwctl.
const MaxTextLen = 255

// CheckText checks a group name or a description, which what names in
// the error ("group name", "description"): valid UTF-8, at most
// MaxTextLen characters, and nothing that changes how the text around it
// is shown. Control characters and the invisible bidirectional controls
// (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) and line and
// paragraph separators (U+2028, U+2029) are refused: they let a name or
// description make `fwctl status` show text other than what the rules say
// (U+202E reverses what follows it). The rules file, the control API and
// fwctl all check with this function.
func CheckText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8: expected printable text", what)
	}
	if n := utf8.RuneCountInString(s); n > MaxTextLen {
		return fmt.Errorf("%s is %d characters long: expected at most %d", what, n, MaxTextLen)
	}
	for i, r := range s {
		if hiddenRune(r) {
			return fmt.Errorf("%s holds %U at character %d, a control or invisible formatting character: expected printable text", what, r, utf8.RuneCountInString(s[:i])+1)
		}
	}
	return nil
}

// hiddenRune reports the characters CheckText refuses.
func hiddenRune(r rune) bool {
	switch {
	case unicode.IsControl(r): // C0, DEL, C1
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, // Arabic letter mark, left-to-right and right-to-left marks
		r >= 0x202a && r <= 0x202e, // embeddings and overrides
		r >= 0x2066 && r <= 0x2069, // isolates
		r == 0x2028, r == 0x2029:   // line and paragraph separators
		return true
	}
	return false
}
