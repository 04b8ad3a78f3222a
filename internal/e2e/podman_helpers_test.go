package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The container network of the test podman (CNI bridge cni-podman0).
const (
	podmanCIDR    = "198.19.13.0/24"
	podmanGateway = "198.19.13.1"
	// cniCache is where libcni keeps its results whatever podman is told;
	// the test removes it when it created it.
	cniCache = "/var/lib/cni/results"
)

// podman runs Debian's podman (4.3, CNI backend) in a test namespace,
// with its storage, run root, CNI configuration and IPAM state in a
// directory of its own; containers run from a plain root directory
// (--rootfs), so no image store or registry is involved.
type podman struct {
	t   *testing.T
	ns  string
	dir string
}

func (e *env) startPodman() *podman {
	e.t.Helper()
	for _, p := range []string{"podman", "conmon", "nsenter"} {
		if _, err := exec.LookPath(p); err != nil {
			e.t.Fatalf("%s is not installed (run make deps: podman): %v", p, err)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/portmap"); err != nil {
		e.t.Fatalf("the CNI plugins are not installed (run make deps: containernetworking-plugins): %v", err)
	}
	dir, err := os.MkdirTemp("", "fwdp-")
	if err != nil {
		e.t.Fatal(err)
	}
	p := &podman{t: e.t, ns: e.server, dir: dir}
	_, statErr := os.Stat(cniCache)
	e.t.Cleanup(func() { p.cleanup(os.IsNotExist(statErr)) })
	conflist := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "podman", "plugins": [
  {"type": "bridge", "bridge": "cni-podman0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": %q, "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": %q, "gateway": %q}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "firewall"}
]}
`, p.path("ipam"), podmanCIDR, podmanGateway)
	writeFileAll(e.t, p.path("cni/podman.conflist"), conflist)
	// Without CAP_SYS_RESOURCE (as in some CI containers) podman's
	// default ulimits cannot be set: ask for none.
	writeFileAll(e.t, p.path("containers.conf"), "[containers]\ndefault_ulimits = []\n")
	return p
}

func (p *podman) path(name string) string { return filepath.Join(p.dir, name) }

// podman runs the podman client in the namespace (nsenter: the CNI
// bridge and its rules go there).
func (p *podman) podman(args ...string) (string, error) {
	global := []string{"--net=/var/run/netns/" + p.ns, "podman",
		"--root", p.path("root"), "--runroot", p.path("run"), "--tmpdir", p.path("tmp"),
		"--storage-driver", "vfs", "--network-backend", "cni", "--cni-config-dir", p.path("cni"),
		"--events-backend", "file", "--cgroup-manager", "cgroupfs"}
	cmd := exec.Command("nsenter", append(global, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.path("containers.conf"))
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (p *podman) mustPodman(args ...string) string {
	p.t.Helper()
	out, err := p.podman(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// runHTTPD starts a container serving containerBody on its port 80,
// published on hostPort, and returns its address.
func (p *podman) runHTTPD(name string, hostPort int) string {
	p.t.Helper()
	rootfs := p.path("rootfs-" + name)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		p.t.Fatal(err)
	}
	writeFileAll(p.t, filepath.Join(rootfs, "www", "index.html"), containerBody+"\n")
	p.mustPodman("run", "-d", "--name", name, "-p", fmt.Sprintf("%d:80", hostPort), "--rootfs", rootfs,
		"/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
	return p.mustPodman("inspect", "-f", "{{.NetworkSettings.IPAddress}}", name)
}

// get is dockerd.containerGet for a podman container.
func (p *podman) get(name, host string, port int) (string, error) {
	return p.podman("exec", name, "/bin/busybox", "sh", "-c",
		fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | /bin/busybox nc -w 3 %s %d`, host, port))
}

// cleanup removes the containers (their conmon too), unmounts what is
// left under the directory and removes it, and libcni's cache directory
// when the test created it and it is empty.
func (p *podman) cleanup(cacheIsOurs bool) {
	if out, err := p.podman("rm", "-f", "-t", "0", "--all"); err != nil {
		p.t.Logf("podman rm: %v\n%s", err, out)
	}
	// conmon runs "podman container cleanup" when a container exits,
	// which opens the storage again: wait for them, or they recreate
	// what RemoveAll removed.
	waitGone(p.ns, "conmon", "podman")
	for _, m := range mountsUnder(p.dir) {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	os.RemoveAll(p.dir)
	if cacheIsOurs {
		os.Remove(cniCache)
		os.Remove(filepath.Dir(cniCache))
	}
}

// waitGone waits up to 10 s for the processes in namespace ns named one
// of names to exit, then kills those left.
func waitGone(ns string, names ...string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []int
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			pid, err := strconv.Atoi(f)
			if err != nil || pid == os.Getpid() {
				continue
			}
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if slices.Contains(names, strings.TrimSpace(string(comm))) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeFileAll writes path, creating its directory.
func writeFileAll(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, text)
}
