#!/usr/bin/env bash
# fwd demo (make demo, as root): nginx behind fwd in two network namespaces.
#
# Builds fwd, creates a client and a server namespace joined by a veth pair
# (198.18.0.0/15 and 2001:db8::/32, no route out), starts nginx on 22, 80,
# 443 and 8080 and fwd with rules/default.yaml in the server namespace,
# shows which requests pass and which are dropped, then opens 8080 at
# runtime with fwctl (through fwd's control socket) and shows it pass.
# Everything is removed on exit, Ctrl-C included.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "demo: run as root (sudo make demo): it creates network namespaces and firewall rules" >&2
	exit 1
fi
go=${GO:-go}
for tool in ip iptables-restore nginx curl openssl "$go"; do
	command -v "$tool" >/dev/null || { echo "demo: $tool is missing (sudo make deps)" >&2; exit 1; }
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
. "$repo/testdata/demo/lib.sh"
tmp=$(mktemp -d /tmp/fwd-demo.XXXXXX)
chmod 755 "$tmp"
C=fwd-demo-client
S=fwd-demo-server
fwd_pid=""
nginx_pid=""

cleanup() {
	trap - EXIT INT TERM
	stop_pid "$fwd_pid"
	if [ -n "$nginx_pid" ]; then
		kill -TERM "$nginx_pid" 2>/dev/null || true
		wait "$nginx_pid" 2>/dev/null || true
	fi
	remove_network
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo; echo "interrupted, cleaning up"; exit 130' INT TERM

build_fwd

make_network

say "server: nginx on 22, 80, 443 (self-signed TLS) and 8080"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj /CN=fwd-demo -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
mkdir -p "$tmp/logs"
listens=""
for p in 22 80 "443 ssl" 8080; do listens+="    listen $p; listen [::]:$p;"$'\n'; done
cat >"$tmp/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  ssl_certificate $tmp/cert.pem;
  ssl_certificate_key $tmp/key.pem;
  server {
$listens    location / { default_type text/plain; return 200 "nginx says hello on port \$server_port\n"; }
  }
}
EOF
ip netns exec "$S" nginx -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 50); do
	ip netns exec "$C" curl -s --max-time 1 http://198.18.0.1:8080/ >/dev/null 2>&1 && break
	sleep 0.1
done

say "without fwd, everything answers"
try "http://198.18.0.1:8080" http://198.18.0.1:8080/

say "starting fwd with a copy of rules/default.yaml (22, 80, 443 and ping from anywhere; egress open)"
start_fwd
echo "  what fwd added to the server's kernel tables (iptables-save):"
ip netns exec "$S" iptables-save | grep -E '^(\*|:FWD|-A .*FWD)' | sed 's/^/    /'

say "requests from the client"
try "http  198.18.0.1:80" http://198.18.0.1/
try "https 198.18.0.1:443" https://198.18.0.1/
try "ssh port 198.18.0.1:22 (nginx here)" http://198.18.0.1:22/
try "http  [2001:db8::1]:80" "http://[2001:db8::1]/"
try "https [2001:db8::1]:443" "https://[2001:db8::1]/"
try "http  198.18.0.1:8080" http://198.18.0.1:8080/
try "http  [2001:db8::1]:8080" "http://[2001:db8::1]:8080/"

say "fwd's log of the drops (rate-limited):"
grep 'msg=dropped' "$tmp/fwd.log" | head -4 | sed 's/^/  /'

say "fwctl status (fwctl talks to fwd over its control socket, $tmp/fwd.sock)"
fwctl status | sed 's/^/  /'

say "opening 8080 at runtime: fwctl allow 8080/tcp"
echo "  \$ fwctl allow 8080/tcp"
fwctl allow 8080/tcp | sed 's/^/  /'
echo "  the rule is in the rules file now (group local; comments and order kept):"
tail -4 "$tmp/rules.yaml" | sed 's/^/    /'
try "http  198.18.0.1:8080" http://198.18.0.1:8080/
try "http  [2001:db8::1]:8080" "http://[2001:db8::1]:8080/"

say "fwctl status verbose: the live rules with their hit counters"
fwctl status verbose | sed 's/^/  /'

say "stopping fwd (SIGTERM): it removes everything it installed"
kill -TERM "$fwd_pid"; wait "$fwd_pid" || true
fwd_pid=""
grep -E 'counters' "$tmp/fwd.log" | tail -1 | sed 's/^/  /'
left=$(ip netns exec "$S" iptables-save | grep -c FWD || true)
echo "  FWD rules left in the kernel: $left"
say "done"
