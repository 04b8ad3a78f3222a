package main

import (
	"flag"
	"fmt"

	"github.com/fwd-project/fwd/internal/kernel"
)

// containerOptions are the container hooks (internal/kernel's
// containers.go): published ports and flows routed to containers obey the
// groups; containers' outbound flows follow the egress rules only when
// asked.
type containerOptions struct {
	on     bool
	egress bool
}

func (c *containerOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.on, "containers", true, "decide new flows to published container ports (Docker, Podman: DNAT in PREROUTING) and to containers' addresses with the ingress rules; false hooks INPUT only, as before")
	fs.BoolVar(&c.egress, "container-egress", false, "with --containers: containers' new outbound flows follow the egress rules too (off: they pass, as Docker lets them)")
}

func (c containerOptions) validate() error {
	if c.egress && !c.on {
		return fmt.Errorf("--container-egress needs --containers")
	}
	return nil
}

// forwardEgressMark is the engine's Config.ForwardEgressMark: the mark
// FWD-FORWARD sets on containers' outbound flows, or 0 when it sets none.
func (c containerOptions) forwardEgressMark() uint32 {
	if !c.egress {
		return 0
	}
	return kernel.DefaultEgressMark
}
