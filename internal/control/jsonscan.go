package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/fwd-project/fwd/internal/rules"
)

// scanJSON walks a request body token by token, for what encoding/json's
// Decode does not tell: a key repeated in one object (Decode silently
// keeps the last value), and which value a body cut at the size limit was
// in the middle of. dup is the first repeated key, as a path such as
// "rules[0].proto"; where is the path of the value being read when the
// data ended or stopped being JSON ("" at the top level); err is why the
// walk stopped early (nil when data is one complete JSON value, maybe
// followed by more).
func scanJSON(data []byte) (dup, where string, err error) {
	type frame struct {
		path    string
		object  bool
		key     string          // objects: the key whose value comes next, "" when a key comes next
		keys    map[string]bool // objects: the keys seen
		index   int             // arrays: the next element's index
		started bool            // the value at key or index has begun
	}
	var stack []*frame
	child := func(f *frame) string {
		if f.object {
			if f.path == "" {
				return f.key
			}
			return f.path + "." + f.key
		}
		return f.path + "[" + strconv.Itoa(f.index) + "]"
	}
	// valueDone moves the innermost frame past the value just read.
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.key = ""
		} else {
			f.index++
		}
		f.started = false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			where := ""
			if n := len(stack); n > 0 {
				f := stack[n-1]
				where = f.path
				if f.key != "" || !f.object {
					where = child(f)
				}
			}
			if errors.Is(err, io.EOF) && len(stack) == 0 {
				err = nil
			}
			return dup, where, err
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if top != nil && top.object && top.key == "" {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone()
				if len(stack) == 0 {
					return dup, "", nil
				}
				continue
			}
			key, _ := tok.(string)
			if top.keys[key] && dup == "" {
				top.key = key
				dup = child(top)
			}
			if top.keys == nil {
				top.keys = map[string]bool{}
			}
			top.keys[key] = true
			top.key = key
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			p := ""
			if top != nil {
				p = child(top)
			}
			stack = append(stack, &frame{path: p, object: tok == json.Delim('{')})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
			if len(stack) == 0 {
				return dup, "", nil
			}
		default:
			if top == nil {
				return dup, "", nil
			}
			valueDone()
		}
	}
}

// tooLarge is the error for a body over max bytes; body is what was read
// of it, which names the value that ran past the limit when it can.
func tooLarge(max int64, body []byte) *Error {
	msg := fmt.Sprintf("request body over %d bytes", max)
	if _, where, _ := scanJSON(body); where != "" {
		msg += fmt.Sprintf(": %s runs past the limit", where)
		if name := lastKey(where); name == "description" || name == "group" {
			msg += fmt.Sprintf(" (a %s takes at most %d characters)", name, rules.MaxTextLen)
		}
	}
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: msg}
}

// lastKey is the last object key of a path such as "rules[0].description".
func lastKey(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		switch path[i] {
		case '.':
			return path[i+1:]
		case ']':
			return ""
		}
	}
	return path
}
