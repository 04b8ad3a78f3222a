package awssg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
)

// TestExportGolden: the shape `aws ec2 authorize-security-group-ingress
// --ip-permissions` takes, for a shipped file.
func TestExportGolden(t *testing.T) {
	for _, name := range []string{"office-ssh", "locked-egress"} {
		t.Run(name, func(t *testing.T) {
			f, err := rules.Load(filepath.Join("..", "..", "rules", name+".yaml"), rules.Options{})
			if err != nil {
				t.Fatal(err)
			}
			doc, warns, err := Export(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) > 0 {
				t.Errorf("warnings: %q", warns)
			}
			got, err := MarshalJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".export.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("export:\n%s\nwant (%s):\n%s", got, path, want)
			}
		})
	}
}

func TestExportSelectAndWarn(t *testing.T) {
	f, err := rules.Parse("t.yaml", []byte(`version: 1
groups:
  - name: web
    ingress:
      - {proto: tcp, ports: 22, from: [10.0.0.0/8], description: ssh}
      - {proto: tcp, ports: 22, from: [10.0.0.0/8, 10.1.0.0/16], description: "ssh, again"}
  - name: sg-web
    description: "naïve"
    ingress:
      - {proto: udp, from: [any], description: "it's"}
`), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err := Export(f, []string{"web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.SecurityGroups) != 1 || doc.SecurityGroups[0].GroupName != "web" {
		t.Fatalf("selected %+v, want web only", doc.SecurityGroups)
	}
	// One permission for tcp 22, each CIDR once, with the first rule's description.
	perms := doc.SecurityGroups[0].IpPermissions
	if len(perms) != 1 || len(perms[0].IpRanges) != 2 || perms[0].IpRanges[0] != (IPRange{"10.0.0.0/8", "ssh"}) || perms[0].IpRanges[1] != (IPRange{"10.1.0.0/16", "ssh, again"}) {
		t.Errorf("permissions %+v", perms)
	}
	if _, _, err := Export(f, []string{"nope"}); err == nil || err.Error() != `no group "nope" in t.yaml` {
		t.Errorf("unknown group: %v", err)
	}
	_, warns, err := Export(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`group "sg-web": AWS refuses a group name that starts with sg-`,
		`group "sg-web": AWS refuses the description "naïve"`,
		`group "sg-web", rule at line 10: AWS refuses the description "it's"`,
	}
	if len(warns) != len(want) {
		t.Fatalf("warnings %q, want %q", warns, want)
	}
	for i := range want {
		if !strings.HasPrefix(warns[i], want[i]) {
			t.Errorf("warning %q, want %q...", warns[i], want[i])
		}
	}
}

// TestGroupRefsRoundTrip: a group reference leaves as a UserIdGroupPairs
// entry naming the group and comes back as the same reference.
func TestGroupRefsRoundTrip(t *testing.T) {
	src := `version: 1
groups:
  - name: db
    ingress:
      - {proto: tcp, ports: 5432, from: [group:web, 198.18.0.0/24], description: web tier}
  - name: web
    ingress:
      - {proto: tcp, ports: 443, from: [any]}
`
	f, err := rules.Parse("r.yaml", []byte(src), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err := Export(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	perm := doc.SecurityGroups[0].IpPermissions[0]
	if len(perm.UserIdGroupPairs) != 1 || perm.UserIdGroupPairs[0] != (GroupPair{GroupName: "web", Description: "web tier"}) {
		t.Fatalf("pairs = %+v", perm.UserIdGroupPairs)
	}
	js, err := MarshalJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(js, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	back, err := rules.Parse("back.yaml", res.YAML, rules.Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	r := back.Groups[0].Ingress
	var refs []string
	for _, x := range r {
		refs = append(refs, x.GroupRefs...)
	}
	if len(refs) != 1 || refs[0] != "web" || len(res.Warnings) != 0 {
		t.Errorf("references after the round trip: %v, warnings %v\n%s", refs, res.Warnings, res.YAML)
	}
}
