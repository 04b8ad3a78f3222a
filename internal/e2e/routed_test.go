package e2e

import (
	"fmt"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/netns"
)

// TestNftablesDNATAndRoutedContainer: a "container" namespace behind the
// server on an interface named like a Docker user network (br-*), its
// port 80 published on 8080 and 8081 by a DNAT in a native nftables table
// (as newer runtimes write, no iptables rule at all), and reachable
// straight by its address through the server's routing. With rules that
// open 8081 only: 8080 times out (the mangle hook runs before nftables'
// dstnat), 8081 answers, the routed port 80 times out, and fwctl allow
// 8080/tcp opens 8080 live.
func TestNftablesDNATAndRoutedContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("nft is not installed (run make deps: nftables): %v", err)
	}
	ctr := "fwdk-" + strings.TrimPrefix(e.server, "fwds-")
	if err := netns.Add(ctr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNetns(ctr) })
	p := netip.MustParsePrefix
	if err := netns.AddVeth(
		netns.End{NS: e.server, Name: "br-fwdtest", Addrs: []netip.Prefix{p("198.19.14.1/24")}},
		netns.End{NS: ctr, Name: "eth0", Addrs: []netip.Prefix{p("198.19.14.2/24")}},
	); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "ip", "-n", ctr, "route", "add", "default", "via", "198.19.14.1")
	mustRun(t, "ip", "-n", e.client, "route", "add", "198.19.14.0/24", "via", server4)
	mustRun(t, "ip", "netns", "exec", e.server, "sysctl", "-q", "net.ipv4.ip_forward=1")
	ln := listenIn(t, ctr, "tcp", "198.19.14.2:80")
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok routed") }))
	nft := `table ip fwdtest {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local tcp dport { 8080, 8081 } dnat to 198.19.14.2:80
	}
}
`
	cmd := exec.Command("ip", "netns", "exec", e.server, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(nft)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	for _, u := range []string{url("http", server4, 8080), url("http", server4, 8081), url("http", "198.19.14.2", 80)} {
		e.waitPass(u)
	}

	path := e.writeRules("rules.yaml", publishedRules)
	e.startFwd("--rules", path, "--queues", "2")
	parallel(
		func() { e.mustDrop(url("http", server4, 8080), "") },
		func() { e.mustDrop(url("http", "198.19.14.2", 80), "") },
		func() { e.mustPass(url("http", server4, 8081), "") },
	)
	e.mustFwctl("allow", "8080/tcp")
	e.mustPass(url("http", server4, 8080), "")
}
