package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/fleet"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The store options: where fleet mode's etcd is (fwctl fleet ..., and
// allow/delete --group G when a store is named).

// storeOpts are --store and its companions.
type storeOpts struct {
	urls    string // --store, else $FWD_STORE
	prefix  string // --store-prefix, else $FWD_STORE_PREFIX
	cert    string // --store-cert
	key     string // --store-key
	ca      string // --store-ca
	timeout time.Duration
	given   string // the last store option given other than --store, for errors
}

// defaultStoreTimeout bounds one fleet command's talk with the store.
const defaultStoreTimeout = 10 * time.Second

// storeOptNames are the store options, each taking a value.
var storeOptNames = []string{"--store", "--store-prefix", "--store-cert", "--store-key", "--store-ca", "--store-timeout"}

func isStoreOpt(name string) bool {
	for _, n := range storeOptNames {
		if n == name {
			return true
		}
	}
	return false
}

const storeUsage = `--store URLS: the fleet's etcd, etcd://HOST:PORT or unix://PATH, comma-separated (default $FWD_STORE);
--store-prefix P: its key prefix (default $FWD_STORE_PREFIX, else /fwd/); --store-cert FILE --store-key FILE:
a TLS client certificate; --store-ca FILE: the CA of the servers' certificates; --store-timeout D (default 10s).`

// take sets the store option name to val; false when val is bad (said
// on stderr).
func (s *storeOpts) take(e env, cmd, name, val string) bool {
	if isStoreOpt(name) && name != "--store" {
		s.given = name
	}
	switch name {
	case "--store":
		s.urls = val
	case "--store-prefix":
		s.prefix = val
	case "--store-cert":
		s.cert = val
	case "--store-key":
		s.key = val
	case "--store-ca":
		s.ca = val
	case "--store-timeout":
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			fmt.Fprintf(e.stderr, "fwctl %s: bad --store-timeout %q: expected a duration such as 10s\n", cmd, val)
			return false
		}
		s.timeout = d
	}
	return true
}

// fromEnv fills what the options left empty from the environment.
func (s *storeOpts) fromEnv(e env) {
	if s.urls == "" {
		s.urls = e.getenv("FWD_STORE")
	}
	if s.prefix == "" {
		s.prefix = e.getenv("FWD_STORE_PREFIX")
	}
	if s.timeout == 0 {
		s.timeout = defaultStoreTimeout
	}
}

// set reports whether a store is named (fleet mode).
func (s storeOpts) set() bool { return s.urls != "" }

// getenv is os.Getenv, or the test's environment.
func (e env) getenv(name string) string {
	if e.env != nil {
		return e.env[name]
	}
	return os.Getenv(name)
}

// storeSession is an Admin over a connected client.
type storeSession struct {
	admin *fleet.Admin
	ctx   context.Context
	close func()
}

// openStore connects to the store; on failure it prints why and returns
// the exit code.
func openStore(e env, cmd string, s storeOpts) (*storeSession, int) {
	if !s.set() {
		fmt.Fprintf(e.stderr, "fwctl %s: no store: give --store etcd://HOST:PORT (or unix://PATH), or set FWD_STORE\n", cmd)
		return nil, exitUsage
	}
	st, err := fleet.ParseStore(s.urls)
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl %s: bad --store: %v\n", cmd, err)
		return nil, exitUsage
	}
	layout, err := fleet.NewLayout(s.prefix)
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl %s: bad --store-prefix: %v\n", cmd, err)
		return nil, exitUsage
	}
	st.CertFile, st.KeyFile, st.CAFile = s.cert, s.key, s.ca
	cli, err := st.Dial()
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl %s: %v\n", cmd, err)
		return nil, exitRejected
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	admin := fleet.NewAdmin(cli, layout, fleet.AdminOptions{Now: e.clock})
	return &storeSession{admin: admin, ctx: ctx, close: func() { cancel(); cli.Close() }}, exitOK
}

// storeFail prints a fleet error and returns its exit code.
func storeFail(e env, cmd string, s storeOpts, err error) int {
	msg := err.Error()
	if errors.Is(err, fleet.ErrUnreachable) {
		cause := strings.TrimPrefix(msg, fleet.ErrUnreachable.Error()+": ")
		msg = fmt.Sprintf("the store (%s) did not answer within %s: is etcd running there? (%s)", s.urls, s.timeout, cause)
	}
	fmt.Fprintf(e.stderr, "fwctl %s: %s\n", cmd, strings.TrimSpace(msg))
	return storeExit(err)
}

// storeExit maps a fleet error to an exit code.
func storeExit(err error) int {
	switch {
	case errors.Is(err, fleet.ErrUnreachable):
		return exitUnreach
	case errors.Is(err, fleet.ErrConflict):
		return exitConflict
	case errors.Is(err, fleet.ErrInvalid), errors.Is(err, fleet.ErrRefused), errors.Is(err, fleet.ErrLimit):
		return exitRejected
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		switch se.GRPCStatus().Code() {
		case codes.PermissionDenied, codes.Unauthenticated:
			return exitPermission
		case codes.Unavailable, codes.DeadlineExceeded:
			return exitUnreach
		}
	}
	return exitRejected
}
