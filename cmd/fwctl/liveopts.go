package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fwd-project/fwd/internal/control"
	"github.com/fwd-project/fwd/internal/rules"
)

// liveOpts are the options of the commands that talk to the daemon.
type liveOpts struct {
	help   bool // --help was asked for: usage printed, exit 0
	socket string
	output string // text or json
	dryRun bool
	group  string
	expire string // deny and insert: --expire DURATION
	// groupSet is true when --group was given (an add on an interface
	// without it goes to the interface's own group).
	groupSet bool
	// profiles is --profiles: the one directory of application profiles
	// to read ("": appprofile.DefaultDirs).
	profiles string
	// revoke is --revoke (delete, reload): also cut the established
	// connections the new rules no longer allow.
	revoke bool
	// force and confirm are --force and --confirm DURATION of the
	// commands that change rules (confirm.go).
	force   bool
	confirm time.Duration
	// store names the fleet's etcd (fleet mode): allow and delete then
	// edit --group G in the store (fleetedit.go).
	store storeOpts
}

// globalOpts are the options run() moves behind the command name when
// they come first (fwctl --dry-run allow 22): name -> takes a value.
var globalOpts = map[string]bool{"--socket": true, "-o": true, "--output": true, "--dry-run": false, "--group": true, "--expire": true, "--profiles": true, "--revoke": false, "--force": false, "--confirm": true,
	"--store": true, "--store-prefix": true, "--store-cert": true, "--store-key": true, "--store-ca": true, "--store-timeout": true}

// hoistGlobals turns "fwctl --dry-run allow 22" into "fwctl allow
// --dry-run 22".
func hoistGlobals(args []string) []string {
	var opts []string
	i := 0
	for i < len(args) {
		name, _, hasValue := strings.Cut(args[i], "=")
		takes, ok := globalOpts[name]
		if !ok {
			break
		}
		opts = append(opts, args[i])
		i++
		if takes && !hasValue && i < len(args) {
			opts = append(opts, args[i])
			i++
		}
	}
	if len(opts) == 0 || i >= len(args) {
		return args
	}
	out := append([]string{args[i]}, opts...)
	return append(out, args[i+1:]...)
}

// scanOpts takes the options out of args wherever they are. what says
// which the command takes: "o" output, "d" dry-run and group, "e"
// expire.
// optsExit is the exit code when scanOpts stopped: 0 after --help.
func optsExit(o liveOpts) int {
	if o.help {
		return exitOK
	}
	return exitUsage
}

func scanOpts(cmd string, e env, args []string, what string) (liveOpts, []string, bool) {
	o := liveOpts{socket: control.DefaultSocket, output: "text", group: control.DefaultGroup}
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			words = append(words, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || len(a) == 1 || isNumber(a) {
			words = append(words, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		takes, known := globalOpts[name]
		switch {
		case name == "-h" || name == "--help" || name == "-help":
			fmt.Fprintln(e.stdout, liveUsage[cmd])
			o.help = true
			return o, nil, false
		case !known || !optAllowed(name, what):
			fmt.Fprintf(e.stderr, "fwctl %s: unknown option %s\n%s\n", cmd, name, liveUsage[cmd])
			return o, nil, false
		}
		if takes && !hasVal {
			if i+1 >= len(args) {
				fmt.Fprintf(e.stderr, "fwctl %s: %s needs a value\n", cmd, name)
				return o, nil, false
			}
			i++
			val = args[i]
		}
		if !scanSafety(cmd, e, name, val, hasVal, &o) || !o.store.take(e, cmd, name, val) {
			return o, nil, false
		}
		if !o.take(cmd, e, name, val, hasVal) {
			return o, nil, false
		}
	}
	if strings.Contains(what, "s") {
		o.store.fromEnv(e)
		if !o.store.set() && o.store.given != "" {
			fmt.Fprintf(e.stderr, "fwctl %s: %s is for fleet mode: name the store too (--store URLS, or FWD_STORE)\n", cmd, o.store.given)
			return o, nil, false
		}
	}
	return o, words, true
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// optAllowed reports whether command letters what (see scanOpts) allow
// the known option name.
func optAllowed(name, what string) bool {
	need := map[string]string{"-o": "o", "--output": "o", "--dry-run": "d", "--group": "d",
		"--expire": "e", "--profiles": "p", "--revoke": "r", "--force": "f", "--confirm": "f"}
	if isStoreOpt(name) {
		return strings.Contains(what, "s")
	}
	l, ok := need[name]
	return !ok || strings.Contains(what, l)
}

// take sets the option name to val (hasVal: val was given with =),
// saying what is wrong with a bad value.
func (o *liveOpts) take(cmd string, e env, name, val string, hasVal bool) bool {
	switch name {
	case "--socket":
		o.socket = val
	case "--profiles":
		o.profiles = val
	case "-o", "--output":
		if val != "text" && val != "json" {
			fmt.Fprintf(e.stderr, "fwctl %s: bad output %q: expected text or json\n", cmd, val)
			return false
		}
		o.output = val
	case "--dry-run":
		if hasVal {
			b, err := strconv.ParseBool(val)
			if err != nil {
				fmt.Fprintf(e.stderr, "fwctl %s: bad --dry-run value %q\n", cmd, val)
				return false
			}
			o.dryRun = b
		} else {
			o.dryRun = true
		}
	case "--revoke":
		if hasVal {
			b, err := strconv.ParseBool(val)
			if err != nil {
				fmt.Fprintf(e.stderr, "fwctl %s: bad --revoke value %q\n", cmd, val)
				return false
			}
			o.revoke = b
		} else {
			o.revoke = true
		}
	case "--expire":
		if !checkExpire(cmd, e, val) {
			return false
		}
		o.expire = val
	case "--group":
		if strings.TrimSpace(val) == "" {
			fmt.Fprintf(e.stderr, "fwctl %s: bad --group: group name is empty: expected a name\n", cmd)
			return false
		}
		if err := rules.CheckText("group name", val); err != nil {
			fmt.Fprintf(e.stderr, "fwctl %s: bad --group %q: %v\n", cmd, val, err)
			return false
		}
		o.group, o.groupSet = val, true
	}
	return true
}
