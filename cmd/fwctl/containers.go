package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/fwd-project/fwd/internal/control"
)

// printContainers prints status's container section: each published
// port (a DNAT rule fwd read from the kernel's nat table), the container
// it leads to and whether the rules admit it; then the warnings about
// traffic fwd does not decide, and the notes.
func printContainers(w io.Writer, c *control.Containers) {
	if c == nil {
		return
	}
	fmt.Fprintln(w)
	hook := "decided by the rules above, before the DNAT"
	if !c.Hooked {
		hook = "NOT decided by fwd (--containers=false)"
	}
	fmt.Fprintf(w, "Containers (published ports, from the nat table's DNAT rules; %s):\n\n", hook)
	if len(c.Published) > 0 {
		fmt.Fprintf(w, "%-26s %-30s %-28s %s\n", "Published", "Container", "Chain", "Admitted")
		fmt.Fprintf(w, "%-26s %-30s %-28s %s\n", "---------", "---------", "-----", "--------")
	}
	for _, p := range c.Published {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%-26s %-30s %-28s %s", publishedText(p), p.To, p.Chain, admittedText(p)), " "))
	}
	for _, s := range c.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", s)
	}
	for _, s := range c.Notes {
		fmt.Fprintf(w, "Note: %s\n", s)
	}
}

// publishedText is "8080/tcp (v4)", "198.18.0.1 5000:5010/udp (v6)".
func publishedText(p control.PublishedPort) string {
	s := strings.ReplaceAll(p.Ports, ":", "-") + "/" + p.Proto
	if p.Host != "" {
		s = p.Host + " " + s
	}
	fam := "v4"
	if p.Family == "ipv6" {
		fam = "v6"
	}
	return s + " (" + fam + ")"
}

func admittedText(p control.PublishedPort) string {
	switch p.Admitted {
	case "any":
		return "open: Anywhere"
	case "some":
		return "open from " + strings.Join(p.From, ", ")
	case "partly":
		if len(p.From) > 0 {
			return "partly open (some ports, from " + strings.Join(p.From, ", ") + ")"
		}
		return "partly open (some ports)"
	}
	return "closed: no rule admits it"
}
