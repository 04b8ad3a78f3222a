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
	"github.com/fwd-project/fwd/internal/types/ipproto"
)

const checkUsage = `usage: fwctl check [-f RULES] [-o json] [--exit-status] [in|out] PROTO ADDR [PORT | TYPE[/CODE]]
       fwctl check [-f RULES] [--exit-status] --batch < queries.jsonl

Without -f the running fwd answers, from its live rules (--socket).

The first form asks whether the host passes one new connection, and why:
"in" (the default) is a connection from ADDR to this host's PORT, "out" one
from this host to ADDR:PORT. PROTO is tcp, udp, icmp, icmpv6, all or a
protocol number; for icmp and icmpv6 give the message TYPE (a number or a
name such as echo-request) and optionally /CODE instead of a port: without
a code the answer is whether some code of the type passes. "all" asks
whether a connection of every protocol passes. Loopback peers (127.0.0.0/8,
::1) and IPv6 neighbour discovery pass before any rule, as in the kernel.

--exit-status exits 0 on accept and 1 on drop (with --batch: 0 when every
line is accepted); bad input exits 1 too, with a message.

--batch reads JSON lines on stdin and writes one JSON line per input line:
  in : {"dir":"in","proto":"tcp","src":"198.51.100.7","dst":"192.0.2.10","sport":40000,"dport":443}
  out: {"verdict":"accept","group":"web","rule":0,"reason":"rule","id":"sgr-cd50c0891d1f"} | {"verdict":"drop","reason":"no-match"} | {"error":"line 7: ..."}
       an ACL entry decided: {"verdict":"drop","reason":"acl-deny","acl":100} | {"verdict":"accept","reason":"acl-allow","acl":200}
`

func runCheck(e env, args []string) int {
	fl := newFlags("check", e)
	file := fl.String("f", "", "rules file to check against (default: ask the running fwd)")
	batch := fl.Bool("batch", false, "read JSON queries on stdin, one per line")
	exitStatus := fl.Bool("exit-status", false, "exit 0 on accept, 1 on drop (--batch: 0 when every line is accepted)")
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
	if *batch && len(words) > 0 {
		fmt.Fprintf(e.stderr, "fwctl check: --batch takes its queries on stdin, not %q\n", words[0])
		return exitUsage
	}
	var q control.Query
	var a control.Ask
	if !*batch {
		// The query is read before the rules or the daemon: bad input is
		// said the same way whoever would answer.
		if q, a, err = parseQuery(words); err != nil {
			fmt.Fprintln(e.stderr, "fwctl check:", err)
			return queryExit(err)
		}
	}
	var res control.CheckResult
	if *file == "" {
		var all bool
		var code int
		if res, all, code = runCheckLive(e, *socket, *output, *batch, q); code != exitOK {
			return code
		}
		if *batch {
			return verdictExit(all, *exitStatus)
		}
	} else {
		tab, err := loadRules(*file, opts, e.stderr)
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			return loadExit(err)
		}
		if *batch {
			all, err := checkBatch(tab, e.stdin, e.stdout)
			if err != nil {
				fmt.Fprintln(e.stderr, "fwctl check:", err)
				return exitRejected
			}
			return verdictExit(all, *exitStatus)
		}
		res = control.Check(tab, a)
	}
	if *output == "json" {
		printJSON(e.stdout, res)
	} else {
		fmt.Fprintf(e.stdout, "%s: %s\n  %s\n", res.Verdict, queryString(a), res.Description)
	}
	return verdictExit(res.Verdict == "accept", *exitStatus)
}

// exitDropped is check --exit-status's exit code for a drop, like grep's
// for no match.
const exitDropped = 1

// verdictExit is check's exit code once it answered: with --exit-status,
// 0 for accept and exitDropped for drop; otherwise 0.
func verdictExit(accepted, exitStatus bool) int {
	if exitStatus && !accepted {
		return exitDropped
	}
	return exitOK
}

// queryExit is the exit code for a query fwctl could not read: usage (2)
// when the words do not fit the grammar or something is missing,
// rejected (1) for a bad address, port, protocol, type or code.
func queryExit(err error) int {
	var re *ruleError
	if errors.As(err, &re) {
		return re.code
	}
	if control.IsMissing(err) {
		return exitUsage
	}
	return exitRejected
}

// parseQuery reads [in|out] PROTO ADDR [PORT | TYPE[/CODE]] into the
// query POST /v1/check and --batch take, and reads that as they do, so a
// bad query gets the same error in every form.
func parseQuery(args []string) (control.Query, control.Ask, error) {
	q, err := queryOf(args)
	if err != nil {
		return q, control.Ask{}, err
	}
	a, err := q.Ask()
	return q, a, err
}

// queryOf puts the words of a query into a control.Query; only what has
// no JSON spelling (the arity, a word that is not a number, an icmp name)
// is checked here.
func queryOf(args []string) (control.Query, error) {
	q := control.Query{Dir: "in"}
	iface, args, err := cutQueryOn(args)
	if err != nil {
		return q, err
	}
	q.Iface = iface
	if len(args) > 0 && (args[0] == "in" || args[0] == "out") {
		q.Dir = args[0]
		args = args[1:]
	}
	if len(args) < 2 || len(args) > 3 {
		return q, usageErr("expected [in|out] PROTO ADDR [PORT | TYPE[/CODE]], got %q", strings.Join(args, " "))
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
		return q, nil // Ask says what is wrong with it
	}
	switch {
	case p.HasPorts():
		if q.Dport, err = number(rest, "port", "0-65535"); err != nil {
			return q, err
		}
	case p.IsICMP():
		return q, icmpWords(&q, rest, p.Num == ipproto.ICMPv6)
	default:
		return q, usageErr("unexpected %q: protocol %s has no ports", rest, p)
	}
	return q, nil
}

// icmpWords reads TYPE[/CODE] into q: TYPE a number or one of the names
// allow takes (parseICMPType's), a name without a code standing for every
// code.
func icmpWords(q *control.Query, s string, v6 bool) error {
	t, c, hasCode := strings.Cut(s, "/")
	if _, err := strconv.Atoi(t); err != nil {
		// Not a number: a name, read as allow reads it.
		spec, err := parseICMPType(s, v6)
		if err != nil {
			return err
		}
		q.Type, q.Code = &spec.Type, spec.Code
		return nil
	}
	var err error
	if q.Type, err = number(t, "icmp type", "0-255"); err != nil {
		return err
	}
	if hasCode {
		if q.Code, err = number(c, "icmp code", "0-255"); err != nil {
			return err
		}
	}
	return nil
}

// number reads a word of a query that JSON would give as a number.
func number(s, what, expected string) (*int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || s[0] == '+' {
		return nil, rejectErr("bad %s %q: expected %s", what, s, expected)
	}
	return &n, nil
}

func queryString(a control.Ask) string {
	k := a.Key
	p := rules.Proto{Num: k.Proto, All: a.AllProtos}
	var what string
	switch {
	case p.All:
		what = "every protocol"
	case p.HasPorts():
		what = fmt.Sprintf("%s port %d", p, k.Port)
	case p.IsICMP() && a.AnyCode:
		what = fmt.Sprintf("%s type %d, any code,", p, k.Type)
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
// more input is waiting, so a script can talk to it line by line. all is
// whether every line was answered accept.
func checkBatch(tab *filter.Table, r io.Reader, w io.Writer) (all bool, err error) {
	all = true
	in := bufio.NewReaderSize(r, 64<<10)
	out := bufio.NewWriterSize(w, 64<<10)
	var buf []byte
	for n := 1; ; n++ {
		if in.Buffered() == 0 {
			if err := out.Flush(); err != nil {
				return all, fmt.Errorf("write: %w", err)
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
			return all, fmt.Errorf("read: %w", err)
		}
		var ok bool
		buf, ok = answer(buf[:0], tab, n, bytes.TrimRight(line, "\r\n"))
		all = all && ok
		if _, werr := out.Write(buf); werr != nil {
			return all, fmt.Errorf("write: %w", werr)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return all, fmt.Errorf("read: %w", err)
		}
	}
	if err := out.Flush(); err != nil {
		return all, fmt.Errorf("write: %w", err)
	}
	return all, nil
}

// answer writes the answer to one --batch line; accepted says whether it
// was accept.
func answer(buf []byte, tab *filter.Table, n int, line []byte) (_ []byte, accepted bool) {
	var a control.CheckResult
	_, ask, err := batchQuery(line)
	if err != nil {
		a.Error = fmt.Sprintf("line %d: %v", n, err)
	} else {
		a = control.Answer(tab, ask)
	}
	b, _ := json.Marshal(a) // cannot fail: plain strings and ints
	buf = append(buf, b...)
	return append(buf, '\n'), a.Verdict == "accept"
}

// batchQuery reads one --batch line: the same query as POST /v1/check.
func batchQuery(line []byte) (control.Query, control.Ask, error) {
	if len(bytes.TrimSpace(line)) == 0 {
		return control.Query{}, control.Ask{}, fmt.Errorf("empty line: expected a JSON object")
	}
	var q control.Query
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&q); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || strings.HasPrefix(err.Error(), "json: ") {
			return q, control.Ask{}, fmt.Errorf("bad JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
		}
		return q, control.Ask{}, err
	}
	if dec.More() {
		return q, control.Ask{}, fmt.Errorf("bad JSON: more than one value on the line")
	}
	a, err := q.Ask()
	return q, a, err
}
