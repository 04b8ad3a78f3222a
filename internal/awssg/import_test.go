package awssg

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
	"github.com/fwd-project/fwd/internal/types/direction"
)

var update = flag.Bool("update", false, "rewrite the expected rules files in testdata")

var corporate = map[string][]netip.Prefix{
	"pl-0123456789abcdef0": {netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("2001:db8:20::/48")},
}

// TestImportGolden imports the hand-built fixtures (shapes from the EC2
// API reference and the AWS CLI's examples) and compares the rules file
// with the expected one, which must validate.
func TestImportGolden(t *testing.T) {
	tests := []struct {
		in, golden string
		opts       ImportOptions
	}{
		{"describe-security-groups.json", "describe-security-groups.yaml", ImportOptions{}},
		{"describe-security-group-rules.json", "describe-security-group-rules.yaml", ImportOptions{PrefixLists: corporate}},
		{"describe-security-group-rules.json", "describe-security-group-rules-unresolved.yaml", ImportOptions{}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.in))
			if err != nil {
				t.Fatal(err)
			}
			tc.opts.Name = tc.in
			res, err := Import(data, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, res.YAML, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.YAML) != string(want) {
				t.Errorf("import %s:\n%s\nwant (%s):\n%s", tc.in, res.YAML, path, want)
			}
			if _, err := rules.Load(path, rules.Options{}); err != nil {
				t.Errorf("the expected file does not validate: %v", err)
			}
		})
	}
}

func TestImportWarnings(t *testing.T) {
	data, err := os.ReadFile("testdata/describe-security-groups.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(data, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"sg-0f0e0d0c0b0a09080 ingress tcp 5432 from 10.0.1.17/24: CIDR 10.0.1.17/24 has host bits set: using 10.0.1.0/24",
		"sg-0f0e0d0c0b0a09080 ingress tcp 5432 from pl-0123456789abcdef0: managed prefix list pl-0123456789abcdef0 is not known here (give its CIDRs with --prefix-list pl-0123456789abcdef0=CIDR,...): left out",
		"sg-05b1c2d3e4f5a6b7c egress udp 53 to pl-0aaaabbbbccccdddd: managed prefix list pl-0aaaabbbbccccdddd is not known here (give its CIDRs with --prefix-list pl-0aaaabbbbccccdddd=CIDR,...): left out",
	}
	if !slices.Equal(res.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(res.Warnings, "\n"), strings.Join(want, "\n"))
	}
	// The db group alone: the web tier it references is not imported.
	res, err = Import(data, ImportOptions{GroupIDs: []string{"sg-0f0e0d0c0b0a09080"}})
	if err != nil {
		t.Fatal(err)
	}
	ref := "sg-0f0e0d0c0b0a09080 ingress tcp 5432 from sg-0a1b2c3d4e5f60718: security group sg-0a1b2c3d4e5f60718 is not among those imported (import it too, and the reference becomes group:NAME): left out"
	if !slices.Contains(res.Warnings, ref) {
		t.Errorf("warnings:\n%s\nwant among them:\n%s", strings.Join(res.Warnings, "\n"), ref)
	}
}

func TestImportSelect(t *testing.T) {
	data, err := os.ReadFile("testdata/describe-security-groups.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ids, names []string
		want       []string // group names in the file
		err        string
	}{
		{nil, nil, []string{"default", "web", "db", "web-sg-05b1c2d3e4f5a6b7c"}, ""},
		{nil, []string{"web"}, []string{"web", "web-sg-05b1c2d3e4f5a6b7c"}, ""},
		{[]string{"sg-0f0e0d0c0b0a09080"}, []string{"default"}, []string{"default", "db"}, ""},
		{[]string{"sg-05b1c2d3e4f5a6b7c"}, nil, []string{"web"}, ""},
		{[]string{"sg-nope"}, nil, nil, `no security group with GroupId "sg-nope" in the input`},
		{nil, []string{"nope"}, nil, `no security group with GroupName "nope" in the input`},
	}
	for _, tc := range tests {
		res, err := Import(data, ImportOptions{GroupIDs: tc.ids, Names: tc.names})
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%v %v: err %v, want %s", tc.ids, tc.names, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		f, err := rules.Parse("imported", res.YAML, rules.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, g := range f.Groups {
			got = append(got, g.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v %v: groups %v, want %v", tc.ids, tc.names, got, tc.want)
		}
	}
}

// TestImportErrors: malformed input is an error naming its JSON path,
// and no result.
func TestImportErrors(t *testing.T) {
	perm := func(p string) string {
		return `{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}, ` + p + `]}]}`
	}
	flat := func(r string) string { return `{"SecurityGroupRules": [` + r + `]}` }
	tests := []struct {
		name, in, want string
	}{
		{"not json", `{"SecurityGroups": [}`, "line 1, column 21: not JSON: invalid character '}' looking for beginning of value"},
		{"truncated", "{\"SecurityGroups\": [\n", "line 2, column 1: not JSON: unexpected end of input"},
		{"empty", "", "line 1, column 1: not JSON: empty input"},
		{"trailing", `{"SecurityGroups": []} {}`, "line 1, column 24: not JSON: more after the end of the document"},
		{"top array", `[]`, "top level: expected an object with SecurityGroups or SecurityGroupRules"},
		{"neither", `{"Groups": []}`, "top level: no SecurityGroups or SecurityGroupRules"},
		{"both", `{"SecurityGroups": [], "SecurityGroupRules": []}`, "top level: both SecurityGroups and SecurityGroupRules"},
		{"no groups", `{"SecurityGroups": []}`, "top level: no security groups in the input"},
		{"groups not a list", `{"SecurityGroups": {}}`, "SecurityGroups: expected a list, got an object"},
		{"group not an object", `{"SecurityGroups": [7]}`, "SecurityGroups[0]: expected an object, got 7"},
		{"no id", `{"SecurityGroups": [{"Description": "x"}]}`, "SecurityGroups[0]: a group without GroupId or GroupName"},
		{"name a number", `{"SecurityGroups": [{"GroupId": "sg-1", "GroupName": 5}]}`, "SecurityGroups[0].GroupName: expected a string, got 5"},
		{"bad group description", `{"SecurityGroups": [{"GroupId": "sg-1", "Description": "a\u202eb"}]}`, "SecurityGroups[0].Description: group description holds U+202E"},
		{"from port string", perm(`{"IpProtocol": "tcp", "FromPort": "x", "ToPort": 22}`), `SecurityGroups[0].IpPermissions[1].FromPort: expected a number, got "x"`},
		{"from port fraction", perm(`{"IpProtocol": "tcp", "FromPort": 2.5, "ToPort": 22}`), `SecurityGroups[0].IpPermissions[1].FromPort: expected a whole number, got 2.5`},
		{"no protocol", perm(`{"FromPort": 1, "ToPort": 2}`), "SecurityGroups[0].IpPermissions[1]: no IpProtocol"},
		{"bad protocol", perm(`{"IpProtocol": "sctp"}`), `SecurityGroups[0].IpPermissions[1].IpProtocol: bad protocol "sctp"`},
		{"protocol 256", perm(`{"IpProtocol": "256"}`), `SecurityGroups[0].IpPermissions[1].IpProtocol: bad protocol "256"`},
		{"port out of range", perm(`{"IpProtocol": "udp", "FromPort": 1, "ToPort": 70000}`), "SecurityGroups[0].IpPermissions[1].ToPort: port 70000 out of range"},
		{"inverted", perm(`{"IpProtocol": "udp", "FromPort": 90, "ToPort": 80}`), "SecurityGroups[0].IpPermissions[1].ToPort: port range 90-80 is inverted"},
		{"to without from", perm(`{"IpProtocol": "tcp", "ToPort": 80}`), "SecurityGroups[0].IpPermissions[1].ToPort: ToPort 80 without a FromPort"},
		{"icmp code without type", perm(`{"IpProtocol": "icmp", "FromPort": -1, "ToPort": 4}`), "SecurityGroups[0].IpPermissions[1].ToPort: ICMP code 4 with every ICMP type"},
		{"icmp type 300", perm(`{"IpProtocol": "icmp", "FromPort": 300, "ToPort": -1}`), "SecurityGroups[0].IpPermissions[1].FromPort: ICMP type 300 out of range"},
		{"ranges not a list", perm(`{"IpProtocol": "-1", "IpRanges": "0.0.0.0/0"}`), `SecurityGroups[0].IpPermissions[1].IpRanges: expected a list, got "0.0.0.0/0"`},
		{"bad cidr", perm(`{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/33"}]}`), `SecurityGroups[0].IpPermissions[1].IpRanges[0].CidrIp: bad mask`},
		{"v6 in IpRanges", perm(`{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "::/0"}]}`), `SecurityGroups[0].IpPermissions[1].IpRanges[0].CidrIp: "::/0": expected an IPv4 CIDR`},
		{"v4 in Ipv6Ranges", perm(`{"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "10.0.0.0/8"}]}`), `SecurityGroups[0].IpPermissions[1].Ipv6Ranges[0].CidrIpv6: "10.0.0.0/8": expected an IPv6 CIDR`},
		{"address", perm(`{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.1"}]}`), `SecurityGroups[0].IpPermissions[1].IpRanges[0].CidrIp: "10.0.0.1" is an address: expected a CIDR such as 10.0.0.1/32`},
		{"no cidr", perm(`{"IpProtocol": "-1", "IpRanges": [{"Description": "x"}]}`), `SecurityGroups[0].IpPermissions[1].IpRanges[0]: no CidrIp`},
		{"bad range description", perm(`{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "a\nb"}]}`), `SecurityGroups[0].IpPermissions[1].IpRanges[0].Description: description holds U+000A`},
		{"egress not a list", `{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissionsEgress": 1}]}`, "SecurityGroups[0].IpPermissionsEgress: expected a list, got 1"},
		{"flat no group", flat(`{"IsEgress": false, "IpProtocol": "-1", "CidrIpv4": "10.0.0.0/8"}`), "SecurityGroupRules[0]: no GroupId"},
		{"flat no IsEgress", flat(`{"GroupId": "sg-1", "IpProtocol": "-1", "CidrIpv4": "10.0.0.0/8"}`), "SecurityGroupRules[0]: no IsEgress"},
		{"flat IsEgress string", flat(`{"GroupId": "sg-1", "IsEgress": "true", "IpProtocol": "-1", "CidrIpv4": "10.0.0.0/8"}`), `SecurityGroupRules[0].IsEgress: expected true or false, got "true"`},
		{"flat no peer", flat(`{"GroupId": "sg-1", "IsEgress": false, "IpProtocol": "-1"}`), "SecurityGroupRules[0]: no peer"},
		{"flat two peers", flat(`{"GroupId": "sg-1", "IsEgress": false, "IpProtocol": "-1", "CidrIpv4": "10.0.0.0/8", "CidrIpv6": "::/0"}`), "SecurityGroupRules[0]: several peers (CidrIpv4, CidrIpv6)"},
		{"flat bad port", flat(`{"GroupId": "sg-1", "IsEgress": true, "IpProtocol": "tcp", "FromPort": 1, "ToPort": true, "CidrIpv4": "10.0.0.0/8"}`), "SecurityGroupRules[0].ToPort: expected a number, got true"},
		{"flat ref without id", flat(`{"GroupId": "sg-1", "IsEgress": false, "IpProtocol": "-1", "ReferencedGroupInfo": {"UserId": "1"}}`), "SecurityGroupRules[0].ReferencedGroupInfo: no GroupId"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Import([]byte(tc.in), ImportOptions{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err %v\nwant  %s...", err, tc.want)
			}
			if res != nil {
				t.Errorf("a result with an error")
			}
			var pe *PathError
			var se *SyntaxError
			if !errors.As(err, &pe) && !errors.As(err, &se) {
				t.Errorf("error %T, want *PathError or *SyntaxError", err)
			}
		})
	}
}

// TestImportPorts: AWS's port and ICMP conventions, one permission each.
func TestImportPorts(t *testing.T) {
	tests := []struct {
		perm string
		want string // the rule, as the rules file writes it; "" when left out
	}{
		{`"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535`, "{proto: tcp, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "tcp", "FromPort": -1, "ToPort": -1`, "{proto: tcp, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "tcp"`, "{proto: tcp, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "6", "FromPort": 0, "ToPort": 1023`, "{proto: tcp, ports: 1-1023, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "tcp", "FromPort": 0, "ToPort": 0`, ""},
		{`"IpProtocol": "17", "FromPort": 53, "ToPort": 53`, "{proto: udp, ports: 53, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "udp", "FromPort": 6000, "ToPort": 6007`, "{proto: udp, ports: 6000-6007, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1`, "{proto: icmp, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "1", "FromPort": 8, "ToPort": -1`, "{proto: icmp, icmp: {type: 8}, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "icmp", "FromPort": 3, "ToPort": 4`, "{proto: icmp, icmp: {type: 3, code: 4}, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "icmpv6", "FromPort": 128, "ToPort": 0`, "{proto: icmpv6, icmp: {type: 128, code: 0}, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "-1", "FromPort": -1, "ToPort": -1`, "{proto: all, from: [10.0.0.0/8]}"},
		{`"IpProtocol": "47", "FromPort": 5, "ToPort": 9`, "{proto: 47, from: [10.0.0.0/8]}"},
	}
	for _, tc := range tests {
		in := `{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{` + tc.perm + `, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}]}`
		res, err := Import([]byte(in), ImportOptions{})
		if err != nil {
			t.Errorf("%s: %v", tc.perm, err)
			continue
		}
		f, err := rules.Parse("imported", res.YAML, rules.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if in := f.Groups[0].Ingress; len(in) > 0 {
			got = rules.FormatRule(&in[0], direction.Ingress)
		}
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.perm, got, tc.want)
		}
		if tc.want == "" && len(res.Warnings) != 1 {
			t.Errorf("%s: left out with warnings %q, want one", tc.perm, res.Warnings)
		}
	}
}
