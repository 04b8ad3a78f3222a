package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The container network of the test dockerd: inside 198.18.0.0/15 and
// 2001:db8::/32, apart from the namespaces' veth.
const (
	dockerBIP  = "198.19.12.1/24"
	dockerCIDR = "198.19.12.0/24"
	dockerV6   = "2001:db8:12::/64"
	// containerBody is what the test image's httpd serves.
	containerBody = "ok container"
)

// dockerd is a Docker daemon running in a test namespace, with its data,
// exec root and socket in a directory of its own (a short path: the
// socket's must fit in sun_path).
type dockerd struct {
	t    *testing.T
	ns   string
	dir  string
	cmd  *exec.Cmd
	logf *os.File
}

// dockerBinaries returns dockerd and the docker client that came with it
// (Debian's docker.io puts them in /usr/sbin and /usr/bin; a docker found
// earlier in PATH may be another one).
func dockerBinaries(t *testing.T) (daemon, client string) {
	t.Helper()
	daemon, err := exec.LookPath("dockerd")
	if err != nil {
		t.Fatalf("dockerd is not installed (run make deps: docker.io): %v", err)
	}
	client = "/usr/bin/docker"
	if _, err := os.Stat(client); err != nil {
		if client, err = exec.LookPath("docker"); err != nil {
			t.Fatalf("docker is not installed (run make deps: docker.io): %v", err)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatalf("/bin/busybox is missing (run make deps: busybox-static): %v", err)
	}
	return daemon, client
}

// startDockerd runs dockerd in namespace ns (through nsenter: ip netns
// exec remounts /sys and hides the cgroups) and waits until it answers.
// The test's end removes the containers, stops it and unmounts what it
// mounted.
func (e *env) startDockerd() *dockerd {
	e.t.Helper()
	dir, err := os.MkdirTemp("", "fwdd-")
	if err != nil {
		e.t.Fatal(err)
	}
	d := &dockerd{t: e.t, ns: e.server, dir: dir}
	e.t.Cleanup(d.cleanup)
	d.start()
	return d
}

func (d *dockerd) path(name string) string { return filepath.Join(d.dir, name) }

func (d *dockerd) start() {
	d.t.Helper()
	daemon, _ := dockerBinaries(d.t)
	logf, err := os.OpenFile(d.path("dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	d.logf = logf
	d.cmd = exec.Command("nsenter", "--net=/var/run/netns/"+d.ns, daemon,
		"--data-root", d.path("data"), "--exec-root", d.path("exec"), "--pidfile", d.path("dockerd.pid"),
		"--host", "unix://"+d.path("docker.sock"), "--bip", dockerBIP, "--storage-driver", "vfs",
		"--ipv6", "--fixed-cidr-v6", dockerV6, "--experimental", "--ip6tables")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := d.docker("info"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("dockerd does not answer:\n%s", d.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// log returns the end of dockerd's log.
func (d *dockerd) log() string {
	b, _ := os.ReadFile(d.path("dockerd.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}

// docker runs the docker client against this dockerd.
func (d *dockerd) docker(args ...string) (string, error) {
	_, client := dockerBinaries(d.t)
	cmd := exec.Command(client, append([]string{"--host", "unix://" + d.path("docker.sock")}, args...)...)
	// Not the host's ~/.docker: no credential helpers, no contexts.
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+d.path("config"))
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (d *dockerd) mustDocker(args ...string) string {
	d.t.Helper()
	out, err := d.docker(args...)
	if err != nil {
		d.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// importImage builds the test image: a static busybox and a /www whose
// index says containerBody; no registry needed.
func (d *dockerd) importImage(name string) {
	d.t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		d.t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{{"bin/busybox", 0o755, bb}, {"www/index.html", 0o644, []byte(containerBody + "\n")}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			d.t.Fatal(err)
		}
		tw.Write(f.body)
	}
	if err := tw.Close(); err != nil {
		d.t.Fatal(err)
	}
	tarPath := d.path("image.tar")
	if err := os.WriteFile(tarPath, buf.Bytes(), 0o644); err != nil {
		d.t.Fatal(err)
	}
	d.mustDocker("import", tarPath, name)
}

// runHTTPD starts a container of image serving containerBody on its port
// 80, published on the host's hostPort, restarted with dockerd. It
// returns the container's IPv4 address.
func (d *dockerd) runHTTPD(image, name string, hostPort int) string {
	d.t.Helper()
	// SIGKILL to stop: busybox, PID 1 of its namespace, ignores SIGTERM.
	d.mustDocker("run", "-d", "--restart", "always", "--stop-signal", "KILL", "--name", name, "-p", fmt.Sprintf("%d:80", hostPort),
		image, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
	return d.mustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", name)
}

// restart stops dockerd (its containers stop with it) and starts it
// again: it rebuilds its chains and restarts the containers.
func (d *dockerd) restart() {
	d.t.Helper()
	d.stop()
	d.start()
}

// stop sends SIGTERM and waits for dockerd to exit.
func (d *dockerd) stop() {
	if d.cmd == nil {
		return
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	d.cmd = nil
	d.logf.Close()
}

// cleanup removes the containers, stops dockerd, unmounts what is left
// under its roots and removes its directory.
func (d *dockerd) cleanup() {
	if d.cmd != nil {
		if ids, err := d.docker("ps", "-aq"); err == nil && ids != "" {
			d.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		if d.t.Failed() {
			d.t.Logf("dockerd log:\n%s", d.log())
		}
	}
	d.stop()
	waitGone(d.ns, "containerd-shim", "containerd", "docker-proxy") // comm: 15 bytes at most
	for _, m := range mountsUnder(d.dir) {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	os.RemoveAll(d.dir)
}

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && strings.HasPrefix(fields[1], dir+"/") {
			out = append(out, fields[1])
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}
