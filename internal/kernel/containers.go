package kernel

import (
	"fmt"
	"slices"
	"strings"
)

// Container hooks (Config.Containers). A container runtime publishes a
// port with a DNAT rule in nat PREROUTING (Docker's DOCKER chain,
// netavark's NETAVARK-HOSTPORT-DNAT, CNI's CNI-HOSTPORT-DNAT) and accepts
// the rewritten flow in filter FORWARD, which FWD-INPUT never sees. This
// kernel has no NETFILTER_NETLINK_GLUE_CT, so a packet queued after the
// DNAT carries the container's address and port, not the published one,
// and its conntrack entry is not yet confirmed, so ctnetlink cannot look
// the original tuple up either. fwd therefore decides every new flow to a
// local address before any DNAT, where the destination is still the
// port the client connected to:
//
//	mangle FWD-PREROUTING (jumped to first from PREROUTING; mangle runs before nat)
//	  -i lo                                            RETURN
//	  connmark has the accept mark                     RETURN   (a flow fwd accepted before)
//	  ctstate NEW, addrtype dst LOCAL                  NFQUEUE  (the same queues and table as INPUT)
//
// A drop verdict ends the flow there, published or not. An accept sets the
// accept mark on the packet, so FWD-INPUT accepts it, by its first rule,
// without queueing it a second time and FWD-SAVE (now also jumped to from FORWARD) saves it to
// the connmark. Traffic routed to a container's own address, with no
// DNAT, is decided in filter FORWARD:
//
//	filter FWD-FORWARD (jumped to first from FORWARD and from DOCKER-USER)
//	  ctstate RELATED,ESTABLISHED                      RETURN
//	  mark or connmark has the accept mark             RETURN   (decided in PREROUTING, or before)
//	  ctstate DNAT                                     RETURN   (decided before the DNAT)
//	  -i BRIDGE ! -o BRIDGE, ctstate NEW               MARK + NFQUEUE (only with ContainerEgress)
//	  -i BRIDGE                                        RETURN   (containers' outbound, container to container)
//	  -o BRIDGE, ctstate NEW                           NFQUEUE  (routed to a container's address)
//
// BRIDGE is each of ContainerBridges. Everything else fwd forwards is not
// its business and returns to the runtime's rules. DOCKER-USER is where
// Docker asks others to hook: fwd creates it when Docker has not (Docker
// keeps an existing one and never flushes it), and the jump there keeps
// fwd first even when dockerd restarts and re-inserts its own rules ahead
// of fwd's jump in FORWARD (which Check then reports and Reinstall puts
// back).

// Chain names of the container hooks.
const (
	ChainPrerouting = "FWD-PREROUTING"
	ChainForward    = "FWD-FORWARD"
	// DockerUserChain is the chain Docker jumps to first from FORWARD and
	// leaves to others.
	DockerUserChain = "DOCKER-USER"
)

// DefaultEgressMark is the packet mark bit FWD-FORWARD sets on a
// container's new outbound flow before queueing it (ContainerEgress), so
// that fwd decides it with the egress rules.
const DefaultEgressMark uint32 = 0x10000000

// ContainerBridges are the interfaces, as iptables patterns, that the
// container runtimes fwd knows put their containers behind: Docker's
// default bridge and user networks, Podman's netavark and CNI bridges.
var ContainerBridges = [...]string{"docker0", "br-+", "podman+", "cni-podman+"}

// builtin reports whether chain is one of the kernel's own hooks.
func builtin(chain string) bool {
	switch chain {
	case "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING":
		return true
	}
	return false
}

// containerChains returns the mangle and filter chains of the container
// hooks.
func containerChains(cfg Config, mark, queue string) (mangle, filter chainSpec) {
	mangle = chainSpec{
		name: ChainPrerouting,
		from: []string{"PREROUTING"},
		rules: []string{
			"-i lo -j RETURN",
			"-m connmark --mark " + mark + " -j RETURN",
			"-m conntrack --ctstate NEW -m addrtype --dst-type LOCAL " + queue,
		},
	}
	rules := []string{
		"-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
		"-m mark --mark " + mark + " -j RETURN",
		"-m connmark --mark " + mark + " -j RETURN",
		"-m conntrack --ctstate DNAT -j RETURN",
	}
	if cfg.ContainerEgress {
		em := fmt.Sprintf("%#x", cfg.egressMark())
		for _, br := range ContainerBridges {
			rules = append(rules, fmt.Sprintf("-i %s ! -o %s -m conntrack --ctstate NEW -j MARK --set-xmark %s/%s", br, br, em, em))
		}
		rules = append(rules, fmt.Sprintf("-m mark --mark %s/%s %s", em, em, queue))
	}
	for _, br := range ContainerBridges {
		rules = append(rules, "-i "+br+" -j RETURN")
	}
	for _, br := range ContainerBridges {
		rules = append(rules, "-o "+br+" -m conntrack --ctstate NEW "+queue)
	}
	filter = chainSpec{name: ChainForward, from: []string{"FORWARD", DockerUserChain}, rules: rules}
	return mangle, filter
}

func (c Config) egressMark() uint32 {
	if c.EgressMark == 0 {
		return DefaultEgressMark
	}
	return c.EgressMark
}

// userChains lists the chains, not fwd's and not built in, that the
// wanted jumps start from, in table order.
func userChains(chains []chainSpec) []string {
	var out []string
	for _, c := range chains {
		for _, from := range c.from {
			if !builtin(from) && !isOurs(from) {
				out = append(out, from)
			}
		}
	}
	return out
}

// hasChain reports whether t declares chain.
func (t *Table) hasChain(chain string) bool {
	if t == nil {
		return false
	}
	for _, c := range t.Chains {
		if c.Name == chain {
			return true
		}
	}
	return false
}

// unusedChain reports whether chain exists in t with no rules and nothing
// jumping to it: one fwd created can then go.
func (t *Table) unusedChain(chain string) bool {
	if !t.hasChain(chain) {
		return false
	}
	for _, r := range t.Rules {
		if r.Chain == chain || r.Target == chain {
			return false
		}
	}
	return true
}

// usedByOthers reports whether chain exists in t with a rule that is not
// a jump to fwd's chains, or a jump to it.
func (t *Table) usedByOthers(chain string) bool {
	if !t.hasChain(chain) {
		return false
	}
	for _, r := range t.Rules {
		if r.Target == chain || r.Chain == chain && !r.jumpsTo(isOurs) {
			return true
		}
	}
	return false
}

// createdChains is, per table, the user chains fwd had to create.
type createdChains map[string][]string

// dropCreated returns the restore input that deletes the chains fwd
// created and that are now unused (Docker never started, or was removed):
// "" when there are none.
func dropCreated(cur Tables, created createdChains) string {
	var b strings.Builder
	for _, name := range tables {
		var del []string
		for _, c := range created[name] {
			if cur[name].unusedChain(c) {
				del = append(del, c)
			}
		}
		if len(del) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", name)
		for _, c := range del {
			fmt.Fprintf(&b, "-X %s\n", c)
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// noteCreated records the user chains cfg jumps from that do not exist
// yet, or that hold only fwd's jumps and that nothing jumps to (a fwd
// killed before its Remove left them): fwd creates them, and Remove
// deletes them if still unused. Docker's DOCKER-USER always has its RETURN
// rule and FORWARD's jump, so it is never taken for fwd's.
func (in *Installer) noteCreated(fam Family, cur Tables, cfg Config) {
	for table, chains := range wanted(fam, cfg) {
		for _, c := range userChains(chains) {
			if cur[table].usedByOthers(c) || slices.Contains(in.created[fam][table], c) {
				continue
			}
			if in.created[fam] == nil {
				in.created[fam] = createdChains{}
			}
			in.created[fam][table] = append(in.created[fam][table], c)
		}
	}
}
