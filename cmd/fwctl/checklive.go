package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/filter"
)

// runCheckLive answers check queries from the running fwd's live table.
func runCheckLive(e env, socket, output string, batch bool, args []string) int {
	o := liveOpts{socket: socket, output: output}
	var q control.Query
	var key filter.Key
	if batch {
		if len(args) > 0 {
			fmt.Fprintf(e.stderr, "fwctl check: --batch takes its queries on stdin, not %q\n", args[0])
			return exitUsage
		}
	} else {
		var err error
		if q, key, err = parseQuery(args); err != nil {
			fmt.Fprintln(e.stderr, "fwctl check:", err)
			return exitUsage
		}
	}
	c, code := dial(e, "check", o)
	if c == nil {
		return code
	}
	defer c.Close()
	cx, cancel := ctx()
	defer cancel()
	if batch {
		if err := checkBatchLive(c, e.stdin, e.stdout); err != nil {
			fmt.Fprintln(e.stderr, "fwctl check:", err)
			var ae *control.Error
			if errors.As(err, &ae) || errors.Is(err, control.ErrUnreachable) || errors.Is(err, control.ErrPermission) {
				return clientExit(err)
			}
			return exitRejected
		}
		return exitOK
	}
	res, err := c.Check(cx, q)
	if err != nil {
		return apiFail(e, "check", err)
	}
	if output == "json" {
		printJSON(e.stdout, res)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "%s: %s\n  %s\n", res.Verdict, queryString(key), res.Description)
	return exitOK
}

// checkBatchLive is check --batch against the daemon: the same contract,
// one request per line.
func checkBatchLive(c *control.Client, r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	out := bufio.NewWriter(w)
	defer out.Flush()
	cx, cancel := ctx()
	defer cancel()
	for n := 1; sc.Scan(); n++ {
		var a control.CheckResult
		k, err := batchKey(bytes.TrimRight(sc.Bytes(), "\r"))
		if err != nil {
			a.Error = fmt.Sprintf("line %d: %v", n, err)
		} else {
			res, err := c.CheckKey(cx, k)
			if err != nil {
				return err
			}
			a = res.Short()
		}
		b, _ := json.Marshal(a) // plain strings and ints
		out.Write(append(b, '\n'))
		if err := out.Flush(); err != nil { // each answer as soon as it is known
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return out.Flush()
}
