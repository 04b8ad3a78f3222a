package observe

import (
	"fmt"
	"net"
	"net/netip"
)

// CheckAddr checks a listen address (HOST:PORT). Unless public, the host
// must be a loopback address or "localhost": the metrics and the status
// page show the rules and the addresses of recent drops, which are for
// the host's operators, not for whoever can reach its interfaces.
func CheckAddr(addr string, public bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT, e.g. 127.0.0.1:9101", addr)
	}
	if port == "" {
		return fmt.Errorf("%q: missing port, e.g. 127.0.0.1:9101", addr)
	}
	if public || host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		if host == "" {
			host = "every address"
		}
		return fmt.Errorf("%s listens on %s, not on loopback: listen on 127.0.0.1 or [::1], or allow it with --metrics-public", addr, host)
	}
	return nil
}
