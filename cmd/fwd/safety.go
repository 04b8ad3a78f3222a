package main

import (
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fwd-project/fwd/internal/lifecycle"
	"github.com/fwd-project/fwd/internal/lockout"
)

// safetyOptions are the flags of the lockout guard and the failsafe.
type safetyOptions struct {
	failsafeSSH   bool
	refuseLockout bool
	sshPorts      []uint16
	sshPortsText  string
}

func (o *safetyOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.failsafeSSH, "failsafe-ssh", false, "always admit new ssh from the addresses of the admins fwd has seen on its control socket, whatever the rules say (as failsafe: {ssh: true} in the rules file)")
	fs.BoolVar(&o.refuseLockout, "refuse-lockout", false, "refuse rules that admit no new ssh from anywhere while sshd listens (at start, on SIGHUP, from a console) instead of warning")
	fs.StringVar(&o.sshPortsText, "ssh-port", strconv.Itoa(lockout.DefaultSSHPort), "`ports` (comma-separated) taken as SSH's when something listens on them, besides those sshd listens on")
}

func (o *safetyOptions) check() error {
	o.sshPorts = nil
	for w := range strings.SplitSeq(o.sshPortsText, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(w), 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("--ssh-port %q: want port numbers 1-65535, comma-separated", o.sshPortsText)
		}
		o.sshPorts = append(o.sshPorts, uint16(n))
	}
	return nil
}

// safety is the lifecycle's configuration of the lockout guard: the
// control peer's SSH session and sshd's ports, read from /proc.
func (d *daemon) safety() lifecycle.Safety {
	var proc lockout.Proc
	configured := d.o.safety.sshPorts
	return lifecycle.Safety{
		Session: proc.SessionOf,
		SSHPorts: func() []uint16 {
			return proc.SSHPorts(configured)
		},
		IfaceOf:       func(a netip.Addr) string { return lockout.IfaceOf(a) },
		FailsafeSSH:   d.o.safety.failsafeSSH,
		RefuseLockout: d.o.safety.refuseLockout,
	}
}
