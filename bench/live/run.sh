#!/usr/bin/env bash
# Live benchmark (make bench-live, as root): the same rules enforced by
# (a) plain iptables ACCEPT rules, no queue, and (b) fwd, measured in one
# run between two network namespaces; (0) no firewall at all for scale.
#
#   new UDP flows per second: every packet a new flow (new source address
#     in 198.19.0.0/16 and port), from a raw socket on one core
#   TCP bulk throughput through one accepted connection
#
# Bounded: DURATION seconds per measurement (default 3; TCP bulk runs three
# times and reports the median), three modes: about 45 seconds.
# Environment: DURATION, QUEUES (fwd --queues, default: CPUs).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "bench-live: run as root (sudo make bench-live)" >&2
	exit 1
fi
go=${GO:-go}
for tool in ip iptables-restore conntrack "$go"; do
	command -v "$tool" >/dev/null || { echo "bench-live: $tool is missing (sudo make deps)" >&2; exit 1; }
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
dur=${DURATION:-3}
queues=${QUEUES:-$(nproc)}
tmp=$(mktemp -d /tmp/fwd-bench.XXXXXX)
C=fwd-bench-client
S=fwd-bench-server
fwd_pid=""

cleanup() {
	trap - EXIT INT TERM
	if [ -n "$fwd_pid" ]; then kill -TERM "$fwd_pid" 2>/dev/null || true; wait "$fwd_pid" 2>/dev/null || true; fi
	for ns in "$C" "$S"; do
		if ip netns list | grep -qw "$ns"; then
			ip netns pids "$ns" | xargs -r kill -9 2>/dev/null || true
			ip netns del "$ns" 2>/dev/null || true
		fi
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building fwd and loadgen" >&2
(cd "$repo" && "$go" build -o "$tmp/fwd" ./cmd/fwd && "$go" build -o "$tmp/loadgen" ./bench/live/loadgen)

for ns in "$C" "$S"; do
	ip netns del "$ns" 2>/dev/null || true
	ip netns add "$ns"
	ip -n "$ns" link set lo up
done
ip -n "$C" link add eth0 type veth peer name eth0 netns "$S"
# /15 on both ends: the flood's sources (198.19.0.0/16) are on-link.
ip -n "$C" addr add 198.18.0.2/15 dev eth0
ip -n "$S" addr add 198.18.0.1/15 dev eth0
ip -n "$C" link set eth0 up
ip -n "$S" link set eth0 up
ip netns exec "$S" sh -c 'echo 0 >/proc/sys/net/ipv4/conf/all/rp_filter; echo 0 >/proc/sys/net/ipv4/conf/eth0/rp_filter'
# Unreplied UDP entries expire sooner, so the flood does not fill the
# conntrack table; the same for every mode.
ip netns exec "$S" sh -c 'echo 5 >/proc/sys/net/netfilter/nf_conntrack_udp_timeout' 2>/dev/null || true

cat >"$tmp/rules.yaml" <<'EOF'
version: 1
groups:
  - name: bench
    ingress:
      - {proto: tcp, ports: [22, 80, 443, 9000], from: [any]}
      - {proto: udp, ports: 5353, from: [any]}
EOF
# The same policy as plain stateful iptables rules.
cat >"$tmp/iptables.rules" <<'EOF'
*filter
:BENCH-INPUT - [0:0]
-A INPUT -j BENCH-INPUT
-A BENCH-INPUT -i lo -j ACCEPT
-A BENCH-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BENCH-INPUT -m conntrack --ctstate INVALID -j DROP
-A BENCH-INPUT -p tcp -m multiport --dports 22,80,443,9000 -j ACCEPT
-A BENCH-INPUT -p udp --dport 5353 -j ACCEPT
-A BENCH-INPUT -j DROP
COMMIT
EOF

field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

measure() {
	ip netns exec "$S" conntrack -F >/dev/null 2>&1 || true
	local u t
	u=$("$tmp/loadgen" udpflows -client "$C" -server "$S" -duration "${dur}s")
	# TCP bulk: the median of three runs (the machine is shared).
	local runs=() r
	for _ in 1 2 3; do
		ip netns exec "$S" conntrack -F >/dev/null 2>&1 || true
		r=$("$tmp/loadgen" tcpbulk -client "$C" -server "$S" -duration "${dur}s")
		runs+=("$(field gbit_per_s "$r")")
	done
	t=$(printf '%s\n' "${runs[@]}" | sort -g | sed -n 2p)
	echo "$u gbit_per_s=$t runs=$(IFS=/; echo "${runs[*]}")"
}


declare -A res
echo "mode 0: no firewall" >&2
res[none]=$(measure)

echo "mode a: plain iptables" >&2
ip netns exec "$S" iptables-restore --noflush <"$tmp/iptables.rules"
res[iptables]=$(measure)
ip netns exec "$S" iptables-restore <<<$'*filter\nCOMMIT'

echo "mode b: fwd --queues $queues" >&2
ip netns exec "$S" "$tmp/fwd" --rules "$tmp/rules.yaml" --socket "$tmp/fwd.sock" --queues "$queues" --log-level warn 2>"$tmp/fwd.log" &
fwd_pid=$!
for _ in $(seq 100); do
	ip netns exec "$S" iptables-save 2>/dev/null | grep -q FWD-INPUT && break
	sleep 0.1
done
sleep 0.5
res[fwd]=$(measure)
qstats=$(ip netns exec "$S" cat /proc/net/netfilter/nfnetlink_queue)
kill -TERM "$fwd_pid"; wait "$fwd_pid" || true
fwd_pid=""

base_flows=$(field flows_per_s "${res[iptables]}")
base_bulk=$(field gbit_per_s "${res[iptables]}")
echo
echo "fwd live benchmark: $(nproc) CPUs, ${dur}s per measurement, fwd --queues $queues, $(uname -r)"
printf '%-28s %10s %12s %8s %12s %8s  %s\n' mode "sent/s" "new flows/s" "vs (a)" "TCP Gbit/s" "vs (a)" "TCP runs"
for m in none iptables fwd; do
	r=${res[$m]}
	flows=$(field flows_per_s "$r")
	bulk=$(field gbit_per_s "$r")
	case $m in
	none) name="(0) no firewall" ;;
	iptables) name="(a) plain iptables ACCEPT" ;;
	fwd) name="(b) fwd (NFQUEUE)" ;;
	esac
	printf '%-28s %10s %12s %7s%% %12s %7s%%  %s\n' "$name" "$(field sent_per_s "$r")" "$flows" \
		"$(awk -v a="$flows" -v b="$base_flows" 'BEGIN{printf "%.0f", (b>0 ? 100*a/b : 0)}')" \
		"$bulk" "$(awk -v a="$bulk" -v b="$base_bulk" 'BEGIN{printf "%.0f", (b>0 ? 100*a/b : 0)}')" \
		"$(sed -n 's/.*runs=\([0-9./]*\).*/\1/p' <<<"$r")"
done
echo
echo "kernel queue counters after the fwd run (queue portid waiting copymode copyrange queue_dropped user_dropped id_seq 1):"
echo "$qstats" | sed 's/^/  /'
