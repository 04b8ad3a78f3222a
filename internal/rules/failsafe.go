package rules

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// Failsafe is the optional top-level failsafe key: implicit allows that
// no rule and no ACL entry can take away.
//
//	failsafe: {ssh: true}
//
// SSH, when set, makes fwd admit new SSH connections (tcp to the ports
// sshd listens on) from the addresses of the admins it has seen on its
// control socket (their SSH_CONNECTION), before the ACL and the groups.
// Established connections pass anyway (conntrack).
type Failsafe struct {
	SSH bool
	Pos Pos
}

// failsafe reads the failsafe mapping.
func (d *decoder) failsafe(k, n *yaml.Node) Failsafe {
	fs := Failsafe{Pos: pos(k)}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return fs
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "failsafe: expected a mapping such as {ssh: true}, got %s", kindName(n))
		return fs
	}
	d.fields(n, "failsafe", []string{"ssh"}, func(_ string, _, v *yaml.Node) {
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			d.errorf(v, "failsafe ssh: expected true or false, got %s", kindName(v))
			return
		}
		fs.SSH, _ = strconv.ParseBool(v.Value)
	})
	return fs
}
