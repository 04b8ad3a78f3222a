package rules

import "bytes"

// An edit keeps a file's line endings. A file whose every line ends in
// "\r\n" (as Windows editors write it) is edited as "\n" text and the
// result, new and changed lines included, gets "\r\n" back; any other
// file (all "\n", or mixed) gets "\n" lines as before. YAML reads either
// ending as one line break, so the ending changes no rule. (yaml.v3 reads
// a comment in "\r\n" text as one more line, which the "\n" text
// avoids.)

// allCRLF reports whether data has lines and each ends in "\r\n".
func allCRLF(data []byte) bool {
	n := bytes.Count(data, []byte("\n"))
	return n > 0 && bytes.Count(data, []byte("\r\n")) == n
}

// withLF returns the "\n" text of a file whose lines all end in "\r\n",
// and any other data as it is.
func withLF(data []byte) []byte {
	if allCRLF(data) {
		return bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	}
	return data
}

// toCRLF ends every line of data in "\r\n": a "\n" not after "\r" becomes
// "\r\n".
func toCRLF(data []byte) []byte {
	out := make([]byte, 0, len(data)+bytes.Count(data, []byte("\n")))
	for i, c := range data {
		if c == '\n' && (i == 0 || data[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// lineEndings gives an edit's output the line endings of the file it
// edits (t.data).
func (t *tree) lineEndings(out []byte) []byte {
	if allCRLF(t.data) {
		return toCRLF(out)
	}
	return out
}
