package packaging

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// need returns the path of tool, or skips (fails under CI=true, where
// testdata/install-deps.sh installs it).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (make deps installs it); CI=true forbids skipping", tool)
		}
		t.Skipf("%s is not installed (make deps installs it)", tool)
	}
	return p
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdin = nil // never a terminal: dpkg must not prompt
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testVersion is what the test builds: git describe's form, which
// deb.sh turns into a Debian version.
const (
	testVersion = "v1.2.3-4-gabcdef0"
	debVersion  = "1.2.3+4.gabcdef0"
)

// buildDeb runs make deb into a scratch directory and returns the .deb.
func buildDeb(t *testing.T) string {
	t.Helper()
	need(t, "dpkg-deb")
	dist := t.TempDir()
	out := run(t, repoRoot(t), "make", "--no-print-directory", "deb", "DIST="+dist, "VERSION="+testVersion)
	deb := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if filepath.Base(deb) != "fwd_"+debVersion+"_"+strings.TrimSpace(run(t, "", "dpkg", "--print-architecture"))+".deb" {
		t.Fatalf("make deb made %q, want version %s", deb, debVersion)
	}
	return deb
}

// dpkgRoot is a scratch dpkg database and root: maintainer scripts run
// outside a chroot, with DPKG_ROOT set, so they must not touch the host.
type dpkgRoot struct {
	t    *testing.T
	root string
}

func newDpkgRoot(t *testing.T) *dpkgRoot {
	root := t.TempDir()
	admin := filepath.Join(root, "var", "lib", "dpkg")
	for _, d := range []string{"info", "updates", "triggers"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"status", "available"} {
		if err := os.WriteFile(filepath.Join(admin, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &dpkgRoot{t: t, root: root}
}

func (d *dpkgRoot) dpkg(args ...string) string {
	d.t.Helper()
	return run(d.t, "", "dpkg", append([]string{"--root=" + d.root, "--force-script-chrootless", "--force-not-root", "--force-depends"}, args...)...)
}

// query is dpkg-query --show of the package's field.
func (d *dpkgRoot) query(field string) string {
	d.t.Helper()
	return run(d.t, "", "dpkg-query", "--admindir="+d.path("/var/lib/dpkg"), "--showformat=${"+field+"}", "--show", "fwd")
}

func (d *dpkgRoot) path(p string) string { return filepath.Join(d.root, p) }

func (d *dpkgRoot) exists(p string) bool {
	_, err := os.Lstat(d.path(p))
	return err == nil
}

// installedFiles are the package's files and their modes.
var installedFiles = map[string]fs.FileMode{
	"/usr/sbin/fwd":                                0o755,
	"/usr/bin/fwctl":                               0o755,
	"/usr/lib/systemd/system/fwd.service":          0o644,
	"/etc/fwd/rules.yaml":                          0o644,
	"/usr/share/fwd/default.yaml":                  0o644,
	"/usr/share/fwd/applications.d/nginx":          0o644,
	"/usr/share/fwd/applications.d/openssh-server": 0o644,
	"/usr/share/fwd/applications.d/postgresql":     0o644,
	"/usr/share/man/man8/fwd.8.gz":                 0o644,
	"/usr/share/man/man8/fwctl.8.gz":               0o644,
	"/usr/share/bash-completion/completions/fwctl": 0o644,
	"/usr/share/zsh/vendor-completions/_fwctl":     0o644,
	"/usr/share/doc/fwd/copyright":                 0o644,
	"/usr/share/doc/fwd/changelog.gz":              0o644,
	"/usr/share/doc/fwd/rules.md":                  0o644,
	"/usr/share/lintian/overrides/fwd":             0o644,
}

// TestDeb builds the package and installs, upgrades, removes and purges
// it in a scratch root: files and modes, the rules file kept as a
// conffile through an upgrade and a removal and gone on purge, and no
// service enabled by the install.
func TestDeb(t *testing.T) {
	deb := buildDeb(t)
	d := newDpkgRoot(t)
	out := d.dpkg("-i", deb)
	if !strings.Contains(out, "systemctl enable --now fwd") {
		t.Errorf("install did not say how to enable fwd:\n%s", out)
	}
	for p, mode := range installedFiles {
		st, err := os.Stat(d.path(p))
		if err != nil {
			t.Errorf("installed package lacks %s", p)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), mode)
		}
	}
	for _, p := range []string{"/etc/systemd/system/multi-user.target.wants/fwd.service", "/etc/systemd/system/fwd.service"} {
		if d.exists(p) {
			t.Errorf("the install enabled fwd: %s exists", p)
		}
	}
	if got := run(t, "", d.path("/usr/sbin/fwd"), "--version"); !strings.HasPrefix(got, "fwd "+testVersion+" (commit ") {
		t.Errorf("fwd --version: %q, want fwd %s (commit ...", got, testVersion)
	}
	if got := run(t, "", d.path("/usr/bin/fwctl"), "version"); !strings.HasPrefix(got, "fwctl "+testVersion+" (commit ") {
		t.Errorf("fwctl version: %q", got)
	}
	shipped, _ := os.ReadFile(filepath.Join(repoRoot(t), "rules", "default.yaml"))
	if got, _ := os.ReadFile(d.path("/etc/fwd/rules.yaml")); !bytes.Equal(got, shipped) {
		t.Error("/etc/fwd/rules.yaml is not rules/default.yaml")
	}
	if got := d.query("Conffiles"); !strings.Contains(got, "/etc/fwd/rules.yaml") || !strings.Contains(got, "/etc/fail2ban/action.d/fwd.conf") {
		t.Errorf("dpkg lists conffiles %q, want /etc/fwd/rules.yaml and /etc/fail2ban/action.d/fwd.conf", got)
	}
	for _, name := range []string{"fwd.conf", "fwd-multiport.conf"} {
		action, _ := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "fail2ban", name))
		if got, _ := os.ReadFile(d.path("/etc/fail2ban/action.d/" + name)); len(action) == 0 || !bytes.Equal(got, action) {
			t.Errorf("/etc/fail2ban/action.d/%s is not packaging/fail2ban/%s", name, name)
		}
		if !strings.Contains(d.query("Conffiles"), "/etc/fail2ban/action.d/"+name) {
			t.Errorf("%s is not a conffile", name)
		}
	}

	// The admin edits the rules; an upgrade keeps them, without a prompt.
	edited := append(append([]byte(nil), shipped...), "# edited by the admin\n"...)
	if err := os.WriteFile(d.path("/etc/fwd/rules.yaml"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	d.dpkg("-i", repack(t, deb, debVersion+"+1"))
	if got := d.query("Version"); got != debVersion+"+1" {
		t.Errorf("after the upgrade, version %q", got)
	}
	wantRules := func(when string) {
		t.Helper()
		if got, err := os.ReadFile(d.path("/etc/fwd/rules.yaml")); err != nil || !bytes.Equal(got, edited) {
			t.Errorf("%s: the admin's rules.yaml was not kept (%v)", when, err)
		}
		for _, suffix := range []string{".dpkg-new", ".dpkg-dist", ".dpkg-old"} {
			if d.exists("/etc/fwd/rules.yaml" + suffix) {
				t.Errorf("%s: rules.yaml%s left behind", when, suffix)
			}
		}
	}
	wantRules("upgrade")

	d.dpkg("-r", "fwd")
	wantRules("remove")
	for _, p := range []string{"/usr/sbin/fwd", "/usr/bin/fwctl", "/usr/lib/systemd/system/fwd.service"} {
		if d.exists(p) {
			t.Errorf("remove left %s", p)
		}
	}
	if got := d.query("db:Status-Status"); got != "config-files" {
		t.Errorf("after remove, status %q, want config-files", got)
	}

	d.dpkg("-P", "fwd")
	if d.exists("/etc/fwd/rules.yaml") || d.exists("/etc/fwd") {
		t.Error("purge left /etc/fwd")
	}
}

// repack returns deb with its version changed: the upgrade.
func repack(t *testing.T, deb, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pkg")
	run(t, "", "dpkg-deb", "-R", deb, dir)
	control := filepath.Join(dir, "DEBIAN", "control")
	b, err := os.ReadFile(control)
	if err != nil {
		t.Fatal(err)
	}
	old := "Version: " + debVersion + "\n"
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("control has no %q:\n%s", old, b)
	}
	if err := os.WriteFile(control, bytes.Replace(b, []byte(old), []byte("Version: "+version+"\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "fwd_"+version+".deb")
	run(t, "", "dpkg-deb", "--root-owner-group", "--build", dir, out)
	return out
}

// TestLintian: no warning or error but those packaging/debian/
// lintian-overrides lists, each under a comment that gives its reason.
func TestLintian(t *testing.T) {
	lintian := need(t, "lintian")
	overrides, err := os.ReadFile(filepath.Join("debian", "lintian-overrides"))
	if err != nil {
		t.Fatal(err)
	}
	reason := false // a comment opened the current block
	for i, line := range strings.Split(string(overrides), "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
			reason = true
		case strings.TrimSpace(line) == "":
			reason = false
		case !reason:
			t.Errorf("lintian-overrides:%d: %q has no reason in a comment above it", i+1, line)
		}
	}
	deb := buildDeb(t)
	cmd := exec.Command(lintian, "--tag-display-limit", "0", deb)
	out, err := cmd.CombinedOutput()
	var bad []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 || err != nil {
		t.Errorf("lintian (%v):\n%s", err, strings.Join(bad, "\n"))
	}
	t.Logf("lintian:\n%s", out)
}

// TestUnitVerifies runs systemd-analyze verify on the installed unit,
// with ExecStart pointing at the package's fwd and the package's man
// pages on MANPATH (Documentation=): any message fails.
func TestUnitVerifies(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	deb := buildDeb(t)
	d := newDpkgRoot(t)
	d.dpkg("-i", deb)
	unit, err := os.ReadFile(d.path("/usr/lib/systemd/system/fwd.service"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("fwd.service")
	if err != nil || !bytes.Equal(unit, src) {
		t.Fatalf("the package's unit is not packaging/fwd.service (%v)", err)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW", "ProtectSystem=strict", "ReadWritePaths=/etc/fwd /run/fwd",
		"ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "SystemCallFilter=@system-service",
		"Before=network-pre.target", "Wants=network-pre.target"} {
		if !bytes.Contains(unit, []byte("\n"+want)) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "fwd.service")
	unit = bytes.Replace(unit, []byte("ExecStart=/usr/sbin/fwd"), []byte("ExecStart="+d.path("/usr/sbin/fwd")), 1)
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", path)
	cmd.Env = append(os.Environ(), "MANPATH="+d.path("/usr/share/man"))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestMakeInstall stages make install and make uninstall in DESTDIR: the
// unit's ExecStart follows PREFIX, an existing rules.yaml is never
// overwritten, and uninstall leaves only /etc/fwd/rules.yaml.
func TestMakeInstall(t *testing.T) {
	need(t, "make")
	dest := t.TempDir()
	make := func(target string) string {
		return run(t, repoRoot(t), "make", "--no-print-directory", target, "DESTDIR="+dest, "PREFIX=/usr/local", "BIN="+filepath.Join(t.TempDir(), "bin"))
	}
	make("install")
	for p, mode := range map[string]fs.FileMode{
		"/usr/local/sbin/fwd": 0o755, "/usr/local/bin/fwctl": 0o755,
		"/etc/systemd/system/fwd.service": 0o644, "/etc/fwd/rules.yaml": 0o644,
		"/usr/local/share/man/man8/fwd.8": 0o644, "/usr/local/share/man/man8/fwctl.8": 0o644,
		"/usr/local/share/fwd/default.yaml":         0o644,
		"/usr/local/share/fwd/applications.d/nginx": 0o644,
	} {
		st, err := os.Stat(filepath.Join(dest, p))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v, want mode %v", p, err, mode)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "/etc/systemd/system/fwd.service"))
	if !bytes.Contains(unit, []byte("\nExecStart=/usr/local/sbin/fwd ")) {
		t.Errorf("unit's ExecStart does not follow PREFIX:\n%s", unit)
	}
	rules := filepath.Join(dest, "/etc/fwd/rules.yaml")
	if err := os.WriteFile(rules, []byte("# mine\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if out := make("install"); !strings.Contains(out, "keeping") {
		t.Errorf("second install did not say it kept rules.yaml:\n%s", out)
	}
	if got, _ := os.ReadFile(rules); string(got) != "# mine\n" {
		t.Errorf("install overwrote rules.yaml: %q", got)
	}
	make("uninstall")
	var left []string
	filepath.WalkDir(dest, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			left = append(left, strings.TrimPrefix(p, dest))
		}
		return nil
	})
	if len(left) != 1 || left[0] != "/etc/fwd/rules.yaml" {
		t.Errorf("after uninstall: %q, want only /etc/fwd/rules.yaml", left)
	}
}
