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
	var sc jsonScan
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) && len(sc.stack) == 0 {
				err = nil
			}
			return sc.dup, sc.where(), err
		}
		if sc.next(tok) {
			return sc.dup, "", nil
		}
	}
}

// jsonScan is scanJSON's state: the objects and arrays open around the
// token being read, and the first repeated key.
type jsonScan struct {
	stack []*jsonFrame
	dup   string
}

// jsonFrame is one open object or array.
type jsonFrame struct {
	path   string
	object bool
	key    string          // objects: the key whose value comes next, "" when a key comes next
	keys   map[string]bool // objects: the keys seen
	index  int             // arrays: the next element's index
}

// child is the path of the value that comes next in f.
func (f *jsonFrame) child() string {
	if !f.object {
		return f.path + "[" + strconv.Itoa(f.index) + "]"
	}
	if f.path == "" {
		return f.key
	}
	return f.path + "." + f.key
}

func (sc *jsonScan) top() *jsonFrame {
	if n := len(sc.stack); n > 0 {
		return sc.stack[n-1]
	}
	return nil
}

// where is the path of the value being read ("" at the top level).
func (sc *jsonScan) where() string {
	f := sc.top()
	switch {
	case f == nil:
		return ""
	case f.key != "" || !f.object:
		return f.child()
	}
	return f.path
}

// next takes one token and reports whether the top-level value is
// complete.
func (sc *jsonScan) next(tok json.Token) bool {
	top := sc.top()
	if top != nil && top.object && top.key == "" {
		if tok == json.Delim('}') {
			return sc.close()
		}
		key, _ := tok.(string) // the decoder gives only strings here
		sc.key(top, key)
		return false
	}
	switch tok {
	case json.Delim('{'), json.Delim('['):
		p := ""
		if top != nil {
			p = top.child()
		}
		sc.stack = append(sc.stack, &jsonFrame{path: p, object: tok == json.Delim('{')})
		return false
	case json.Delim(']'):
		return sc.close()
	}
	if top == nil {
		return true
	}
	sc.valueDone()
	return false
}

// key takes an object's key, noting the first one repeated.
func (sc *jsonScan) key(f *jsonFrame, key string) {
	f.key = key
	if f.keys[key] && sc.dup == "" {
		sc.dup = f.child()
	}
	if f.keys == nil {
		f.keys = map[string]bool{}
	}
	f.keys[key] = true
}

// close ends the innermost object or array and reports whether it was
// the top-level value.
func (sc *jsonScan) close() bool {
	sc.stack = sc.stack[:len(sc.stack)-1]
	sc.valueDone()
	return len(sc.stack) == 0
}

// valueDone moves the innermost frame past the value just read.
func (sc *jsonScan) valueDone() {
	f := sc.top()
	if f == nil {
		return
	}
	if f.object {
		f.key = ""
	} else {
		f.index++
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
