package awssg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/fwd-project/fwd/internal/rules"
)

// Group is one security group as Export writes it: the
// describe-security-groups shape, without what only AWS knows (GroupId,
// OwnerId, VpcId). IpPermissions is what `aws ec2
// authorize-security-group-ingress --ip-permissions` takes,
// IpPermissionsEgress what authorize-security-group-egress takes.
type Group struct {
	GroupName           string       `json:"GroupName"`
	Description         string       `json:"Description"`
	IpPermissions       []Permission `json:"IpPermissions"`
	IpPermissionsEgress []Permission `json:"IpPermissionsEgress"`
}

// Permission is one AWS IpPermission.
type Permission struct {
	IpProtocol string      `json:"IpProtocol"`
	FromPort   *int        `json:"FromPort,omitempty"`
	ToPort     *int        `json:"ToPort,omitempty"`
	IpRanges   []IPRange   `json:"IpRanges,omitempty"`
	Ipv6Ranges []IPv6Range `json:"Ipv6Ranges,omitempty"`
	// UserIdGroupPairs are the groups a rule references (group:web), by
	// name: AWS takes a GroupName pair in a default VPC; elsewhere put
	// the group's id in GroupId.
	UserIdGroupPairs []GroupPair `json:"UserIdGroupPairs,omitempty"`
}

// GroupPair is a reference to another security group.
type GroupPair struct {
	GroupName   string `json:"GroupName"`
	Description string `json:"Description,omitempty"`
}

// IPRange is an IPv4 CIDR of a Permission.
type IPRange struct {
	CidrIp      string `json:"CidrIp"`
	Description string `json:"Description,omitempty"`
}

// IPv6Range is an IPv6 CIDR of a Permission.
type IPv6Range struct {
	CidrIpv6    string `json:"CidrIpv6"`
	Description string `json:"Description,omitempty"`
}

// Document is Export's whole output: the shape of
// describe-security-groups, which Import reads back.
type Document struct {
	SecurityGroups []Group `json:"SecurityGroups"`
}

// Export converts the named groups of f (every group when names is empty)
// into AWS permissions: prefix lists and any expanded to their CIDRs, one
// permission per protocol and port range (or ICMP type and code) holding
// every CIDR of the group's rules for it; tcp and udp without ports as
// 0-65535; an omitted egress as AWS's default egress rule (-1 to
// 0.0.0.0/0 and ::/0). A CIDR that two rules of a group allow for the
// same permission is written once, with the first rule's description. A
// group reference (group:web) becomes a UserIdGroupPairs entry naming
// the group (GroupName), which Import reads back as the reference.
// The warnings name what AWS will refuse (descriptions and group names
// with characters outside AWS's set, group names starting "sg-").
func Export(f *rules.File, names []string) (*Document, []string, error) {
	for _, n := range names {
		if f.GroupIndex(n) < 0 {
			return nil, nil, fmt.Errorf("no group %q in %s", n, f.Path)
		}
	}
	doc := &Document{SecurityGroups: []Group{}}
	var warns []string
	for _, g := range f.Groups {
		if len(names) > 0 && !slices.Contains(names, g.Name) {
			continue
		}
		eg := Group{GroupName: g.Name, Description: g.Description, IpPermissions: permissions(g.Ingress), IpPermissionsEgress: permissions(g.Egress)}
		if g.EgressOmitted {
			eg.IpPermissionsEgress = []Permission{{IpProtocol: "-1", IpRanges: []IPRange{{CidrIp: all4}}, Ipv6Ranges: []IPv6Range{{CidrIpv6: all6}}}}
		}
		warns = append(warns, awsTextWarnings(g)...)
		doc.SecurityGroups = append(doc.SecurityGroups, eg)
	}
	return doc, warns, nil
}

// permissions converts one list of rules.
func permissions(rs []rules.Rule) []Permission {
	out := []Permission{}
	type key struct {
		proto    string
		from, to int
	}
	index := map[key]int{}
	seen := map[key]map[string]bool{}
	for _, r := range rs {
		for _, p := range portsOf(r) {
			k := key{p.IpProtocol, intOr(p.FromPort), intOr(p.ToPort)}
			i, ok := index[k]
			if !ok {
				i = len(out)
				index[k] = i
				seen[k] = map[string]bool{}
				out = append(out, p)
			}
			for _, pfx := range r.Prefixes {
				c := pfx.String()
				if seen[k][c] {
					continue
				}
				seen[k][c] = true
				if pfx.Addr().Is4() {
					out[i].IpRanges = append(out[i].IpRanges, IPRange{CidrIp: c, Description: r.Description})
				} else {
					out[i].Ipv6Ranges = append(out[i].Ipv6Ranges, IPv6Range{CidrIpv6: c, Description: r.Description})
				}
			}
			for _, ref := range r.GroupRefs {
				if seen[k]["group:"+ref] {
					continue
				}
				seen[k]["group:"+ref] = true
				out[i].UserIdGroupPairs = append(out[i].UserIdGroupPairs, GroupPair{GroupName: ref, Description: r.Description})
			}
		}
	}
	return out
}

func intOr(p *int) int {
	if p == nil {
		return -2 // absent, as distinct from -1
	}
	return *p
}

// portsOf is a rule's protocol and ports as AWS permissions without
// peers: one per port range.
func portsOf(r rules.Rule) []Permission {
	n := func(i int) *int { return &i }
	switch {
	case r.Proto.All:
		return []Permission{{IpProtocol: "-1"}}
	case r.Proto.HasPorts():
		if len(r.Ports) == 0 {
			return []Permission{{IpProtocol: r.Proto.String(), FromPort: n(0), ToPort: n(65535)}}
		}
		out := make([]Permission, 0, len(r.Ports))
		for _, pr := range r.Ports {
			out = append(out, Permission{IpProtocol: r.Proto.String(), FromPort: n(int(pr.Lo)), ToPort: n(int(pr.Hi))})
		}
		return out
	case r.Proto.IsICMP():
		p := Permission{IpProtocol: r.Proto.String(), FromPort: n(-1), ToPort: n(-1)}
		if r.ICMP != nil {
			p.FromPort = n(int(r.ICMP.Type))
			if !r.ICMP.AnyCode {
				p.ToPort = n(int(r.ICMP.Code))
			}
		}
		return []Permission{p}
	}
	return []Permission{{IpProtocol: r.Proto.String()}}
}

// awsText reports whether AWS takes s as a group name or description:
// a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*.
func awsText(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" ._-:/()#,@[]+=&;{}!$*", r))
	})
}

func awsTextWarnings(g rules.Group) []string {
	var out []string
	if strings.HasPrefix(strings.ToLower(g.Name), "sg-") {
		out = append(out, fmt.Sprintf("group %q: AWS refuses a group name that starts with sg-", g.Name))
	}
	if !awsText(g.Name) {
		out = append(out, fmt.Sprintf("group %q: AWS refuses the name: it takes a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*", g.Name))
	}
	if !awsText(g.Description) {
		out = append(out, fmt.Sprintf("group %q: AWS refuses the description %q: it takes a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*", g.Name, g.Description))
	}
	for _, rs := range [][]rules.Rule{g.Ingress, g.Egress} {
		for _, r := range rs {
			if !awsText(r.Description) {
				out = append(out, fmt.Sprintf("group %q, rule at line %d: AWS refuses the description %q: it takes a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*", g.Name, r.Pos.Line, r.Description))
			}
		}
	}
	return out
}

// MarshalJSON writes v as indented JSON, as the AWS CLI prints it,
// without escaping &, < and >.
func MarshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
