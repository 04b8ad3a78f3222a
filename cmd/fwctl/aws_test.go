package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwd-project/fwd/internal/rules"
)

const (
	awsGroups = "../../internal/awssg/testdata/describe-security-groups.json"
	awsRules  = "../../internal/awssg/testdata/describe-security-group-rules.json"
	officeSSH = "../../rules/office-ssh.yaml"
)

func awsRun(stdin string, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(env{stdin: strings.NewReader(stdin), stdout: &o, stderr: &e}, args)
	return code, o.String(), e.String()
}

// TestImportAWSCommand: exit codes, where the file goes, and that a bad
// input writes nothing.
func TestImportAWSCommand(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.yaml")
	if err := os.WriteFile(existing, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp"}, {"IpProtocol": "tcp"}, {"IpProtocol": "tcp", "FromPort": "x"}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.yaml")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a part of stdout
		stderr string // a part of stderr
		wrote  string // a file that must now hold a valid rules file
		absent string // a file that must not exist
	}{
		{"stdout", []string{"import", "aws", awsGroups}, exitOK, "  - name: web-sg-05b1c2d3e4f5a6b7c\n", "warning: sg-0f0e0d0c0b0a09080 ingress tcp 5432 from pl-0123456789abcdef0: managed prefix list pl-0123456789abcdef0 is not known here", "", ""},
		{"to a file", []string{"import", "aws", "-o", out, awsGroups}, exitOK, out + ": 4 groups from " + awsGroups + " (describe-security-groups output), 3 warnings", "", out, ""},
		{"exists", []string{"import", "aws", awsGroups, "-o", existing}, exitRejected, "", existing + " exists: use --force to replace it", "", ""},
		{"force", []string{"import", "aws", "--force", "-o", existing, awsRules}, exitOK, "2 groups from " + awsRules + " (describe-security-group-rules output), 3 warnings", "", existing, ""},
		{"select", []string{"import", "aws", "--group-id", "sg-0f0e0d0c0b0a09080", "--name", "default", awsGroups}, exitOK, "  - name: db\n", "", "", ""},
		{"select none", []string{"import", "aws", "--name", "nope", awsGroups}, exitRejected, "", `no security group with GroupName "nope" in the input`, "", ""},
		{"prefix list", []string{"import", "aws", "--prefix-list", "pl-0123456789abcdef0=10.20.0.0/16,2001:db8:20::/48", awsRules}, exitOK, "  pl-0123456789abcdef0: [10.20.0.0/16, 2001:db8:20::/48]\n", "", "", ""},
		{"malformed", []string{"import", "aws", "-o", filepath.Join(dir, "never.yaml"), bad}, exitRejected, "", `fwctl import: ` + bad + `: SecurityGroups[0].IpPermissions[2].FromPort: expected a number, got "x"`, "", filepath.Join(dir, "never.yaml")},
		{"missing", []string{"import", "aws", filepath.Join(dir, "nope.json")}, exitRejected, "", "no such file or directory", "", ""},
		{"not aws", []string{"import", "gcp", awsGroups}, exitUsage, "", `fwctl import: unknown source "gcp": expected aws`, "", ""},
		{"no source", []string{"import"}, exitUsage, "", "fwctl import: missing source: expected aws", "", ""},
		{"no file", []string{"import", "aws"}, exitUsage, "", "expected one FILE.json (or - for stdin)", "", ""},
		{"bad prefix list", []string{"import", "aws", "--prefix-list", "pl-1", awsRules}, exitUsage, "", `expected ID=CIDR[,CIDR...], got "pl-1"`, "", ""},
		{"bad prefix list cidr", []string{"import", "aws", "--prefix-list", "pl-1=10.0.0.0/33", awsRules}, exitUsage, "", `bad mask`, "", ""},
		{"force without -o", []string{"import", "aws", "--force", awsRules}, exitUsage, "", "--force without -o FILE", "", ""},
		{"help", []string{"import", "--help"}, exitOK, "", "usage: fwctl import aws", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := awsRun("", tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout with %q, stderr with %q", code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
			if tc.wrote != "" {
				if code, _, stderr := awsRun("", "validate", tc.wrote); code != exitOK {
					t.Errorf("validate %s: exit %d: %s", tc.wrote, code, stderr)
				}
			}
			if tc.absent != "" {
				if _, err := os.Stat(tc.absent); !os.IsNotExist(err) {
					t.Errorf("%s written (%v)", tc.absent, err)
				}
			}
		})
	}
	if data, _ := os.ReadFile(existing); string(data) == "keep me\n" {
		t.Errorf("--force did not replace %s", existing)
	}
}

// TestExportAWSCommand: the whole document, one group's arrays, and the
// errors.
func TestExportAWSCommand(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"document", []string{"export", "aws", "-f", officeSSH}, exitOK, `"GroupName": "admin"`, ""},
		{"ingress", []string{"export", "aws", "-f", officeSSH, "--group", "admin", "--ingress-only"}, exitOK, "[\n    {\n        \"IpProtocol\": \"tcp\",\n        \"FromPort\": 22,", ""},
		{"egress default", []string{"export", "aws", "-f", defaultRules, "--egress-only"}, exitOK, `[
    {
        "IpProtocol": "-1",
        "IpRanges": [
            {
                "CidrIp": "0.0.0.0/0"
            }
        ],
        "Ipv6Ranges": [
            {
                "CidrIpv6": "::/0"
            }
        ]
    }
]
`, ""},
		{"two groups", []string{"export", "aws", "-f", officeSSH, "--ingress-only"}, exitUsage, "", "has 2 groups: name one with --group"},
		{"both", []string{"export", "aws", "-f", officeSSH, "--ingress-only", "--egress-only"}, exitUsage, "", "pick one"},
		{"unknown group", []string{"export", "aws", "-f", officeSSH, "--group", "nope"}, exitRejected, "", `fwctl export: no group "nope" in ` + officeSSH},
		{"bad rules", []string{"export", "aws", "-f", awsGroups}, exitRejected, "", awsGroups + ":1:1:"},
		{"not aws", []string{"export", "azure"}, exitUsage, "", `unknown source "azure"`},
		{"extra word", []string{"export", "aws", officeSSH}, exitUsage, "", "the rules file is -f FILE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := awsRun("", tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout with %q, stderr with %q", code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
			if code == exitOK && !json.Valid([]byte(stdout)) {
				t.Errorf("not JSON:\n%s", stdout)
			}
		})
	}
}

// TestExportImportAWS: fwctl import aws - reads what fwctl export aws
// writes, back to the same groups.
func TestExportImportAWS(t *testing.T) {
	code, exported, stderr := awsRun("", "export", "aws", "-f", officeSSH)
	if code != exitOK {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	code, imported, stderr := awsRun(exported, "import", "aws", "-")
	if code != exitOK || stderr != "" {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	f, err := rules.Parse("imported", []byte(imported), rules.Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, imported)
	}
	if len(f.Groups) != 2 || f.Groups[0].Name != "web" || f.Groups[1].Name != "admin" || f.Groups[1].Description != "ssh for people, monitoring for the monitor" {
		t.Errorf("imported:\n%s", imported)
	}
}
