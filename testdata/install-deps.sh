#!/bin/sh
# Installs, with apt-get, the system packages the end-to-end tests use, when
# run as root and any is missing. Without root it says what is skipped.
set -e
need=""
command -v iptables >/dev/null 2>&1 || need="$need iptables"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v conntrack >/dev/null 2>&1 || need="$need conntrack"
command -v curl >/dev/null 2>&1 || need="$need curl"
[ -x /usr/sbin/nginx ] || need="$need nginx-light"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
# The status page test loads the page in headless Chromium.
command -v chromium >/dev/null 2>&1 || need="$need chromium"
# packaging/: lintian checks the .deb, systemd-analyze verifies the unit.
command -v lintian >/dev/null 2>&1 || need="$need lintian"
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
# The fail2ban test runs Debian's fail2ban with packaging/fail2ban/fwd.conf.
command -v fail2ban-server >/dev/null 2>&1 || need="$need fail2ban"
# Fleet mode tests run Debian's etcd server (internal/fleet/etcdtest).
[ -x /usr/bin/etcd ] || need="$need etcd-server"
# The container tests run Debian's dockerd (20.10) in a namespace, with an
# image made of the static busybox.
command -v dockerd >/dev/null 2>&1 || need="$need docker.io"
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need="$need busybox-static"
# And podman (4.3, CNI backend) with the CNI plugins it uses.
command -v podman >/dev/null 2>&1 || need="$need podman"
[ -x /usr/lib/cni/portmap ] || need="$need containernetworking-plugins"
# A DNAT written by nft, as runtimes on native nftables do.
command -v nft >/dev/null 2>&1 || need="$need nftables"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: not root; end-to-end tests will skip (missing:$need)"
	exit 0
fi
echo "install-deps: apt-get install$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# nginx and dockerd must not start as system services: the tests run
# their own, in namespaces (a dockerd on the host would rewrite its
# iptables).
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends $need >/dev/null
