package control

// Containers is status's container section: the ports published by DNAT
// in the nat table (read from the kernel, not from a runtime's API) and
// the paths fwd does not decide.
type Containers struct {
	// Hooked says fwd's container hooks are installed (fwd --containers).
	Hooked    bool            `json:"hooked"`
	Published []PublishedPort `json:"published,omitempty"`
	// Warnings name traffic to containers that fwd does not decide now.
	Warnings []string `json:"warnings,omitempty"`
	// Notes say what is decided elsewhere (containers on the host's
	// network are local ports).
	Notes []string `json:"notes,omitempty"`
}

// PublishedPort is one DNAT rule and what the ingress rules say of it.
type PublishedPort struct {
	Family string `json:"family"` // ipv4 or ipv6
	Proto  string `json:"proto"`  // tcp, udp; "all" when the rule names none
	Ports  string `json:"ports"`  // as iptables prints them: 8080, 8000:8010, 80,443; "all"
	Host   string `json:"host,omitempty"`
	To     string `json:"to"`    // the container's address and port
	Chain  string `json:"chain"` // DOCKER, NETAVARK-HOSTPORT-DNAT, CNI-DN-...
	// Admitted is "any" (every peer of the family), "some" (the peers in
	// From), "partly" (some of its ports only) or "none".
	Admitted string   `json:"admitted"`
	From     []string `json:"from,omitempty"`
}
