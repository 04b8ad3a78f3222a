// Package textdiff renders the difference of two texts as a minimal
// unified diff, for the dry runs of rules edits (a rules file, a fleet
// policy key).
package textdiff

import (
	"fmt"
	"strconv"
)

// Unified is a minimal unified diff of two texts: the lines between
// their common head and tail. Edits change one or a few nearby places, so
// one hunk is enough to read them. Equal texts give "".
func Unified(name string, a, b []byte) string {
	return UnifiedNames(name, name, a, b)
}

// UnifiedNames is Unified with the two sides named apart (a created
// file's old side is /dev/null).
func UnifiedNames(aName, bName string, a, b []byte) string {
	al, bl := splitLines(a), splitLines(b)
	head := 0
	for head < len(al) && head < len(bl) && al[head] == bl[head] {
		head++
	}
	tail := 0
	for tail < len(al)-head && tail < len(bl)-head && al[len(al)-1-tail] == bl[len(bl)-1-tail] {
		tail++
	}
	if head == len(al) && head == len(bl) {
		return ""
	}
	const ctx = 3
	from := max(0, head-ctx)
	aEnd, bEnd := len(al)-tail, len(bl)-tail
	aTo, bTo := min(len(al), aEnd+ctx), min(len(bl), bEnd+ctx)
	var out []byte
	out = fmt.Appendf(out, "--- %s\n+++ %s\n", aName, bName)
	out = fmt.Appendf(out, "@@ -%s +%s @@\n", hunkRange(from, aTo-from), hunkRange(from, bTo-from))
	emit := func(mark byte, lines []string) {
		for _, l := range lines {
			out = append(out, mark)
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	emit(' ', al[from:head])
	emit('-', al[head:aEnd])
	emit('+', bl[head:bEnd])
	emit(' ', al[aEnd:aTo])
	return string(out)
}

func hunkRange(start, n int) string {
	if n == 0 {
		return strconv.Itoa(start) + ",0"
	}
	return strconv.Itoa(start+1) + "," + strconv.Itoa(n)
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	if s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	var out []string
	for {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i == len(s) {
			return out
		}
		s = s[i+1:]
	}
}
