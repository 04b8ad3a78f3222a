package main

import (
	"errors"
	"net/netip"

	"github.com/fwd-project/fwd/internal/netns"
)

// setup creates the client and server namespaces (deleting stale ones of
// the same names, left by a run that was killed) and joins them with a
// veth pair eth0 - eth0: the server has dst/15, the client 198.18.0.2/15
// and every address of srcs (/15 on both ends, so that the flood's sources
// in 198.19.0.0/16 are on-link).
func setup(client, server string, dst netip.Addr, srcs []netip.Addr) error {
	if err := teardown(client, server); err != nil {
		return err
	}
	for _, ns := range []string{client, server} {
		if err := netns.Add(ns); err != nil {
			teardown(client, server)
			return err
		}
	}
	c := []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("198.18.0.2"), 15)}
	for _, a := range srcs {
		c = append(c, netip.PrefixFrom(a, 15))
	}
	if err := netns.AddVeth(
		netns.End{NS: client, Name: "eth0", Addrs: c},
		netns.End{NS: server, Name: "eth0", Addrs: []netip.Prefix{netip.PrefixFrom(dst, 15)}},
	); err != nil {
		teardown(client, server)
		return err
	}
	return nil
}

// teardown kills what runs in the two namespaces and deletes them; a
// missing one is no error.
func teardown(client, server string) error {
	return errors.Join(netns.Delete(client), netns.Delete(server))
}
