package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"regexp"
	"strings"

	"github.com/fwd-project/fwd/internal/awssg"
	"github.com/fwd-project/fwd/internal/rules"
)

// defaultRulesPath is the rules file fwd reads when not told otherwise.
const defaultRulesPath = "/etc/fwd/rules.yaml"

const importUsage = `usage: fwctl import aws [-o FILE [--force]] [--group-id ID]... [--name NAME]... [--prefix-list ID=CIDR,...]... FILE.json

Turns the output of "aws ec2 describe-security-groups" or "aws ec2
describe-security-group-rules" (FILE.json, or - for stdin) into a rules
file: one group per security group, descriptions kept. What has no meaning
on one host (a reference to another security group, a managed prefix list
not given with --prefix-list) is left out with a warning. The rules file
goes to stdout, or to -o FILE (an existing FILE only with --force).
`

const exportUsage = `usage: fwctl export aws [-f RULES] [--group NAME]... [--ingress-only | --egress-only]

Writes the rules file's groups as AWS security groups, in the shape of
"aws ec2 describe-security-groups": {"SecurityGroups": [{"GroupName",
"Description", "IpPermissions", "IpPermissionsEgress"}]}. With
--ingress-only (--egress-only) it writes one group's IpPermissions
(IpPermissionsEgress) array alone, which
  aws ec2 authorize-security-group-ingress --group-id sg-... --ip-permissions file://FILE
(authorize-security-group-egress) takes. Prefix lists and any are expanded
to CIDRs; an omitted egress is AWS's default egress rule.
`

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// prefixListFlag is --prefix-list ID=CIDR,..., repeatable.
type prefixListFlag map[string][]netip.Prefix

var prefixListID = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)

func (m prefixListFlag) String() string { return "" }

func (m prefixListFlag) Set(s string) error {
	id, cidrs, ok := strings.Cut(s, "=")
	if !ok || cidrs == "" {
		return fmt.Errorf("expected ID=CIDR[,CIDR...], got %q", s)
	}
	if !prefixListID.MatchString(id) || id == "any" || id == "any4" || id == "any6" {
		return fmt.Errorf("bad prefix list id %q: expected one such as pl-0123456789abcdef0", id)
	}
	for _, c := range strings.Split(cidrs, ",") {
		p, err := rules.ParsePeer(strings.TrimSpace(c))
		if err != nil {
			return err
		}
		m[id] = append(m[id], p)
	}
	return nil
}

// awsWord checks that the command's first word is "aws".
func awsWord(e env, cmd string, words []string) ([]string, bool) {
	if len(words) == 0 {
		fmt.Fprintf(e.stderr, "fwctl %s: missing source: expected aws\n", cmd)
		return nil, false
	}
	if words[0] != "aws" {
		fmt.Fprintf(e.stderr, "fwctl %s: unknown source %q: expected aws\n", cmd, words[0])
		return nil, false
	}
	return words[1:], true
}

func runImport(e env, args []string) int {
	fl := newFlags("import", e)
	out := fl.String("o", "", "write the rules file to `FILE` instead of stdout")
	force := fl.Bool("force", false, "replace FILE when it exists")
	var ids, names stringList
	fl.Var(&ids, "group-id", "import the security group with this `ID` (repeatable)")
	fl.Var(&names, "name", "import the security groups with this GroupName (repeatable)")
	lists := prefixListFlag{}
	fl.Var(lists, "prefix-list", "the CIDRs of a managed prefix list, `ID=CIDR,...` (repeatable)")
	fl.Usage = func() {
		fmt.Fprint(e.stderr, importUsage)
		fl.PrintDefaults()
	}
	words, code, ok := parseInterleaved(fl, args)
	if !ok {
		return code
	}
	words, ok = awsWord(e, "import", words)
	if !ok || len(words) != 1 {
		if ok {
			fmt.Fprintln(e.stderr, "fwctl import aws: expected one FILE.json (or - for stdin)")
		}
		fl.Usage()
		return exitUsage
	}
	in := words[0]
	data, err := readInput(e, in)
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl import: %v\n", err)
		return loadExit(err)
	}
	name := in
	if in == "-" {
		name = "stdin"
	}
	res, err := awssg.Import(data, awssg.ImportOptions{Name: name, GroupIDs: ids, Names: names, PrefixLists: lists})
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl import: %s: %v\n", name, err)
		return exitRejected
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	if *out == "" {
		if *force {
			fmt.Fprintln(e.stderr, "fwctl import: --force without -o FILE")
			return exitUsage
		}
		e.stdout.Write(res.YAML)
		return exitOK
	}
	if err := writeNew(*out, res.YAML, *force); err != nil {
		fmt.Fprintf(e.stderr, "fwctl import: %v\n", err)
		return loadExit(err)
	}
	fmt.Fprintf(e.stdout, "%s: %s from %s (%s output), %s\n", *out, plural(res.Groups, "group"), name, res.Source, plural(len(res.Warnings), "warning"))
	return exitOK
}

// readInput reads FILE, or stdin for "-".
func readInput(e env, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(e.stdin)
	}
	return os.ReadFile(path)
}

// writeNew writes data to path, which must not exist unless force.
func writeNew(path string, data []byte, force bool) error {
	if force {
		return rules.WriteFileAtomic(path, data)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: use --force to replace it", path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func runExport(e env, args []string) int {
	fl := newFlags("export", e)
	file := fl.String("f", defaultRulesPath, "rules `FILE` to export")
	var groups stringList
	fl.Var(&groups, "group", "export the group `NAME` (repeatable; default every group)")
	ingress := fl.Bool("ingress-only", false, "write one group's IpPermissions array alone (for authorize-security-group-ingress)")
	egress := fl.Bool("egress-only", false, "write one group's IpPermissionsEgress array alone (for authorize-security-group-egress)")
	limits := addLimitFlags(fl)
	fl.Usage = func() {
		fmt.Fprint(e.stderr, exportUsage)
		fl.PrintDefaults()
	}
	words, code, ok := parseInterleaved(fl, args)
	if !ok {
		return code
	}
	words, ok = awsWord(e, "export", words)
	if !ok || len(words) > 0 {
		if ok {
			fmt.Fprintf(e.stderr, "fwctl export aws: unexpected %q: the rules file is -f FILE\n", words[0])
		}
		fl.Usage()
		return exitUsage
	}
	if *ingress && *egress {
		fmt.Fprintln(e.stderr, "fwctl export: --ingress-only and --egress-only: pick one")
		return exitUsage
	}
	opts, err := limits.options()
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl export: %v\n", err)
		return exitUsage
	}
	tab, err := loadRules(*file, opts, e.stderr)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return loadExit(err)
	}
	doc, warns, err := awssg.Export(tab.File(), groups)
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl export: %v\n", err)
		return exitRejected
	}
	for _, w := range warns {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	var v any = doc
	if *ingress || *egress {
		if n := len(doc.SecurityGroups); n != 1 {
			fmt.Fprintf(e.stderr, "fwctl export: --ingress-only and --egress-only write one group's permissions, and %s has %s: name one with --group\n", *file, plural(n, "group"))
			return exitUsage
		}
		v = doc.SecurityGroups[0].IpPermissions
		if *egress {
			v = doc.SecurityGroups[0].IpPermissionsEgress
		}
	}
	out, err := awssg.MarshalJSON(v)
	if err != nil {
		fmt.Fprintf(e.stderr, "fwctl export: %v\n", err)
		return exitRejected
	}
	e.stdout.Write(out)
	return exitOK
}
