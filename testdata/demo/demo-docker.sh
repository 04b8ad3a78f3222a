#!/usr/bin/env bash
# fwd container demo (make demo-docker, as root): a port published by
# Docker, closed by fwd, then opened with fwctl.
#
# Creates a client and a server namespace joined by a veth pair
# (198.18.0.0/15 and 2001:db8::/32, no route out), runs dockerd (Debian's
# docker.io) in the server namespace with its own data root, imports an
# image made of the static busybox, runs `docker run -p 8080:80` with
# busybox httpd, and shows that the published port answers without fwd,
# is dropped with fwd and rules/default.yaml (which does not open 8080),
# and answers after `fwctl allow 8080/tcp`. Everything is removed on exit,
# Ctrl-C included.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "demo-docker: run as root (sudo make demo-docker): it creates network namespaces, firewall rules and runs dockerd" >&2
	exit 1
fi
go=${GO:-go}
docker=/usr/bin/docker
[ -x "$docker" ] || docker=$(command -v docker || true)
for tool in ip iptables-restore curl dockerd nsenter "$docker" "$go"; do
	command -v "$tool" >/dev/null || { echo "demo-docker: $tool is missing (sudo make deps)" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "demo-docker: /bin/busybox is missing (sudo make deps: busybox-static)" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
. "$repo/testdata/demo/lib.sh"
tmp=$(mktemp -d /tmp/fwd-demo-docker.XXXXXX)
chmod 755 "$tmp"
C=fwd-demo-dclient
S=fwd-demo-dserver
fwd_pid=""
dockerd_pid=""
export DOCKER_CONFIG="$tmp/docker-config"
dk() { "$docker" --host "unix://$tmp/docker.sock" "$@"; }

cleanup() {
	trap - EXIT INT TERM
	stop_pid "$fwd_pid"
	if [ -n "$dockerd_pid" ]; then
		dk rm -f web >/dev/null 2>&1 || true
		kill -TERM "$dockerd_pid" 2>/dev/null || true
		wait "$dockerd_pid" 2>/dev/null || true
	fi
	# What dockerd mounted under its roots, deepest first.
	awk -v d="$tmp/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	remove_network
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo; echo "interrupted, cleaning up"; exit 130' INT TERM

build_fwd

make_network

say "server: dockerd (containers on 198.19.12.0/24 and 2001:db8:12::/64)"
nsenter --net=/var/run/netns/$S dockerd --data-root "$tmp/data" --exec-root "$tmp/exec" \
	--pidfile "$tmp/dockerd.pid" --host "unix://$tmp/docker.sock" --bip 198.19.12.1/24 \
	--storage-driver vfs --ipv6 --fixed-cidr-v6 2001:db8:12::/64 --experimental --ip6tables \
	>"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 200); do dk info >/dev/null 2>&1 && break; sleep 0.1; done
dk info >/dev/null 2>&1 || { echo "dockerd did not start:"; tail -20 "$tmp/dockerd.log"; exit 1; }
mkdir -p "$tmp/image/bin" "$tmp/image/www"
cp /bin/busybox "$tmp/image/bin/"
echo "busybox httpd in a container says hello" >"$tmp/image/www/index.html"
tar -C "$tmp/image" -cf "$tmp/image.tar" .
dk import "$tmp/image.tar" fwd-demo:1 >/dev/null
echo "  \$ docker run -d --name web -p 8080:80 fwd-demo:1 /bin/busybox httpd -f -p 80 -h /www"
dk run -d --name web --stop-signal KILL -p 8080:80 fwd-demo:1 /bin/busybox httpd -f -p 80 -h /www >/dev/null
echo "  Docker's DNAT for it (iptables-save -t nat):"
ip netns exec "$S" iptables-save -t nat | grep -- '-j DNAT' | sed 's/^/    /'
# The container's IPv6 address is usable once its duplicate address
# detection is over, a second or two.
for u in http://198.18.0.1:8080/ "http://[2001:db8::1]:8080/"; do
	for _ in $(seq 50); do
		ip netns exec "$C" curl -s --max-time 1 "$u" >/dev/null 2>&1 && break
		sleep 0.1
	done
done

say "without fwd, the published port answers"
try "http  198.18.0.1:8080" http://198.18.0.1:8080/
try "http  [2001:db8::1]:8080" "http://[2001:db8::1]:8080/"

say "starting fwd with a copy of rules/default.yaml (22, 80, 443 and ping; not 8080)"
start_fwd
echo "  fwd's container hooks (iptables-save): before the DNAT, and in DOCKER-USER"
ip netns exec "$S" iptables-save | grep -E '^-A (PREROUTING|FORWARD|DOCKER-USER) -j FWD' | sed 's/^/    /'

say "the published port is closed now"
try "http  198.18.0.1:8080" http://198.18.0.1:8080/
try "http  [2001:db8::1]:8080" "http://[2001:db8::1]:8080/"

say "fwctl status: the rules, then the published ports read from the kernel"
fwctl status | sed 's/^/  /'

say "opening it at runtime: fwctl allow 8080/tcp"
echo "  \$ fwctl allow 8080/tcp"
fwctl allow 8080/tcp | sed 's/^/  /'
try "http  198.18.0.1:8080" http://198.18.0.1:8080/
try "http  [2001:db8::1]:8080" "http://[2001:db8::1]:8080/"
fwctl status | sed -n '/^Containers/,$p' | sed 's/^/  /'

say "stopping fwd (SIGTERM): it removes everything it installed"
kill -TERM "$fwd_pid"; wait "$fwd_pid" || true
fwd_pid=""
left=$(ip netns exec "$S" iptables-save | grep -c FWD || true)
echo "  FWD rules left in the kernel: $left"
say "done"
