// Package e2e holds fwd's end-to-end tests: the real daemon, built once,
// in front of a real nginx, on a real kernel.
//
// Each test creates its own pair of network namespaces, a client and a
// server joined by a veth pair, with addresses from 198.18.0.0/15 and
// 2001:db8::/32 and no route anywhere else. The server runs nginx (on 22,
// 80, 443 and 8080) and fwd; the client runs curl and small Go clients.
// The namespaces, and everything running in them, are removed when the test
// ends, failed or not.
//
// The tests need root, iptables, iproute2, nginx (Debian nginx-light),
// curl, openssl and chromium (make deps installs them). Without root they skip;
// with CI=true in the environment a skip is a failure.
package e2e
