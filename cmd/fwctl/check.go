package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/filter"
	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

const checkUsage = `usage: fwctl check [-f RULES] [-o json] [in|out] PROTO ADDR [PORT | TYPE[/CODE]]
       fwctl check [-f RULES] --batch < queries.jsonl

Without -f the running fwd answers, from its live rules (--socket).

The first form asks what the rules do to one new connection: "in" (the
default) is a connection from ADDR to this host's PORT, "out" one from this
host to ADDR:PORT. PROTO is tcp, udp, icmp, icmpv6 or a protocol number; for
icmp and icmpv6 give the message TYPE and optionally /CODE instead of a port.

--batch reads JSON lines on stdin and writes one JSON line per input line:
  in : {"dir":"in","proto":"tcp","src":"198.51.100.7","dst":"192.0.2.10","sport":40000,"dport":443}
  out: {"verdict":"accept","group":"web","rule":0,"id":"sgr-cd50c0891d1f"} | {"verdict":"drop"} | {"error":"line 7: ..."}
`

func runCheck(e env, args []string) int {
	fl := newFlags("check", e)
	file := fl.String("f", "", "rules file to check against (default: ask the running fwd)")
	batch := fl.Bool("batch", false, "read JSON queries on stdin, one per line")
	limits := addLimitFlags(fl)
	socket := fl.String("socket", control.DefaultSocket, "control socket of the running fwd, asked when there is no -f")
	output := fl.String("o", "text", "output: text or json (one query)")
	fl.Usage = func() {
		fmt.Fprint(e.stderr, checkUsage)
		fl.PrintDefaults()
	}
	words, code, ok := parseInterleaved(fl, args)
	if !ok {
		return code
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(e.stderr, "fwctl check: bad output %q: expected text or json\n", *output)
		return exitUsage
	}
	opts, err := limits.options()
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl check: %v\n", err)
		return exitUsage
	}
	if *file == "" {
		return runCheckLive(e, *socket, *output, *batch, words)
	}
	tab, err := loadRules(*file, opts, e.stderr)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return loadExit(err)
	}
	if *batch {
		if len(words) > 0 {
			fmt.Fprintf(e.stderr, "fwctl check: --batch takes its queries on stdin, not %q\n", words[0])
			return exitUsage
		}
		if err := checkBatch(tab, e.stdin, e.stdout); err != nil {
			fmt.Fprintln(e.stderr, "fwctl check:", err)
			return exitRejected
		}
		return exitOK
	}
	_, k, err := parseQuery(words)
	if err != nil {
		fmt.Fprintln(e.stderr, "fwctl check:", err)
		return exitUsage
	}
	if *output == "json" {
		printJSON(e.stdout, control.Check(tab, k))
		return exitOK
	}
	v := tab.Match(k)
	word := "drop"
	if v.Accepted() {
		word = "accept"
	}
	fmt.Fprintf(e.stdout, "%s: %s\n  %s\n", word, queryString(k), tab.Describe(v))
	return exitOK
}

// parseQuery reads [in|out] PROTO ADDR [PORT | TYPE[/CODE]] into the
// query POST /v1/check and --batch take, and reads that as they do, so a
// bad query gets the same error in every form.
func parseQuery(args []string) (control.Query, filter.Key, error) {
	q, err := queryOf(args)
	if err != nil {
		return q, filter.Key{}, err
	}
	k, err := q.Key()
	return q, k, err
}

// queryOf puts the words of a query into a control.Query; only what has
// no JSON spelling (the arity, a word that is not a number) is checked
// here.
func queryOf(args []string) (control.Query, error) {
	q := control.Query{Dir: "in"}
	if len(args) > 0 && (args[0] == "in" || args[0] == "out") {
		q.Dir = args[0]
		args = args[1:]
	}
	if len(args) < 2 || len(args) > 3 {
		return q, fmt.Errorf("expected [in|out] PROTO ADDR [PORT | TYPE[/CODE]], got %q", strings.Join(args, " "))
	}
	q.Proto = args[0]
	if q.Dir == "out" {
		q.Dst = args[1]
	} else {
		q.Src = args[1]
	}
	if len(args) < 3 {
		return q, nil
	}
	rest := args[2]
	p, err := rules.ParseProto(q.Proto)
	if err != nil {
		return q, nil // Key says what is wrong with it
	}
	switch {
	case p.HasPorts():
		if q.Dport, err = number(rest, "port", "0-65535"); err != nil {
			return q, err
		}
	case p.IsICMP():
		t, c, hasCode := strings.Cut(rest, "/")
		if q.Type, err = number(t, "icmp type", "0-255"); err != nil {
			return q, err
		}
		if hasCode {
			if q.Code, err = number(c, "icmp code", "0-255"); err != nil {
				return q, err
			}
		}
	default:
		if !p.All {
			return q, fmt.Errorf("unexpected %q: protocol %s has no ports", rest, p)
		}
	}
	return q, nil
}

// number reads a word of a query that JSON would give as a number.
func number(s, what, expected string) (*int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || s[0] == '+' {
		return nil, fmt.Errorf("bad %s %q: expected %s", what, s, expected)
	}
	return &n, nil
}

func queryString(k filter.Key) string {
	p := rules.Proto{Num: k.Proto}
	var what string
	switch {
	case p.HasPorts():
		what = fmt.Sprintf("%s port %d", p, k.Port)
	case p.IsICMP():
		what = fmt.Sprintf("%s type %d code %d", p, k.Type, k.Code)
	default:
		what = "protocol " + p.String()
	}
	if k.Dir == direction.Egress {
		return fmt.Sprintf("%s from this host to %s (egress)", what, k.Peer)
	}
	return fmt.Sprintf("%s from %s to this host (ingress)", what, k.Peer)
}

// checkBatch answers JSON queries line by line. A bad line is answered
// with an error object and the run goes on. Output is flushed whenever no
// more input is waiting, so a script can talk to it line by line.
func checkBatch(tab *filter.Table, r io.Reader, w io.Writer) error {
	in := bufio.NewReaderSize(r, 64<<10)
	out := bufio.NewWriterSize(w, 64<<10)
	var buf []byte
	for n := 1; ; n++ {
		if in.Buffered() == 0 {
			if err := out.Flush(); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		line, err := in.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long line: gather it whole.
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = in.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				break
			}
			return fmt.Errorf("read: %w", err)
		}
		buf = answer(buf[:0], tab, n, bytes.TrimRight(line, "\r\n"))
		if _, werr := out.Write(buf); werr != nil {
			return fmt.Errorf("write: %w", werr)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func answer(buf []byte, tab *filter.Table, n int, line []byte) []byte {
	var a control.CheckResult
	k, err := batchKey(line)
	if err != nil {
		a.Error = fmt.Sprintf("line %d: %v", n, err)
	} else {
		a = control.Answer(tab, k)
	}
	b, _ := json.Marshal(a) // cannot fail: plain strings and ints
	buf = append(buf, b...)
	return append(buf, '\n')
}

// batchKey reads one --batch line: the same query as POST /v1/check.
func batchKey(line []byte) (filter.Key, error) {
	if len(bytes.TrimSpace(line)) == 0 {
		return filter.Key{}, fmt.Errorf("empty line: expected a JSON object")
	}
	var q control.Query
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&q); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || strings.HasPrefix(err.Error(), "json: ") {
			return filter.Key{}, fmt.Errorf("bad JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
		}
		return filter.Key{}, err
	}
	if dec.More() {
		return filter.Key{}, fmt.Errorf("bad JSON: more than one value on the line")
	}
	return q.Key()
}
