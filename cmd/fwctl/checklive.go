package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/fwd-project/fwd/internal/control"
)

// runCheckLive answers check queries from the running fwd's live table:
// q, or with batch the lines on stdin. all says whether every batch line
// was answered accept; code is not exitOK when it could not answer.
func runCheckLive(e env, socket, output string, batch bool, q control.Query) (res control.CheckResult, all bool, code int) {
	o := liveOpts{socket: socket, output: output}
	c, code := dial(e, "check", o)
	if c == nil {
		return res, false, code
	}
	defer c.Close()
	if batch {
		all, err := checkBatchLive(c, e.stdin, e.stdout)
		if err != nil {
			fmt.Fprintln(e.stderr, "fwctl check:", err)
			var ae *control.Error
			if errors.As(err, &ae) || errors.Is(err, control.ErrUnreachable) || errors.Is(err, control.ErrPermission) {
				return res, false, clientExit(err)
			}
			return res, false, exitRejected
		}
		return res, all, exitOK
	}
	cx, cancel := ctx()
	defer cancel()
	res, err := c.Check(cx, q)
	if err != nil {
		return res, false, apiFail(e, "check", err)
	}
	return res, res.Verdict == "accept", exitOK
}

// checkBatchLive is check --batch against the daemon: the same contract,
// one request per line. all says whether every line was answered accept.
func checkBatchLive(c *control.Client, r io.Reader, w io.Writer) (all bool, err error) {
	all = true
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	out := bufio.NewWriter(w)
	defer out.Flush()
	cx, cancel := ctx()
	defer cancel()
	for n := 1; sc.Scan(); n++ {
		var a control.CheckResult
		q, _, err := batchQuery(bytes.TrimRight(sc.Bytes(), "\r"))
		if err != nil {
			a.Error = fmt.Sprintf("line %d: %v", n, err)
		} else {
			// The query as read, not a key made of it: a left-out icmp
			// code must reach the daemon as left out.
			res, err := c.Check(cx, q)
			if err != nil {
				return false, err
			}
			a = res.Short()
		}
		all = all && a.Verdict == "accept"
		b, _ := json.Marshal(a) // plain strings and ints
		out.Write(append(b, '\n'))
		if err := out.Flush(); err != nil { // each answer as soon as it is known
			return false, fmt.Errorf("write: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read: %w", err)
	}
	return all, out.Flush()
}
