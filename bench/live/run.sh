#!/usr/bin/env bash
# Live benchmark (make bench-live, as root): the same rules enforced by
# (a) plain iptables ACCEPT rules, no queue, and (b) fwd with its batched
# queue loop (--queue-io=batch, the default), (c) fwd with go-nfqueue's
# per-packet loop (--queue-io=simple), measured in one run between two
# network namespaces; (0) no firewall at all for scale.
#
#   new UDP flows per second: every packet a new flow (new source address
#     in 198.19.0.0/16 and port), from a raw socket on one core
#   TCP connections per second: HTTP/1.0 requests to nginx from PARALLEL
#     connection loops over 16 client addresses (198.18.1.1-16)
#   TCP bulk throughput through one accepted connection (median of 3)
#   fwd's CPU (user+system, /proc/PID/stat) per packet it was queued
#
# Then (sections.sh) new UDP flows/s of (a) and (b) over 7 runs, the
# order swapped every run, medians; and the large table: a ClassBench
# filter set (../shared/data/classbench/acl1_10k, read in place; skipped
# when absent) as linear iptables, one nftables interval set, fwd, and
# fwd with one rule, and no firewall (the ceiling), new flows/s spread
# over the table's rules.
#
# Bounded: DURATION seconds per measurement (default 3): about 5 minutes
# (basic 75 s, flows7 80 s, large 135 s). SECTIONS (default "basic flows7
# large") picks sections; FLOWS_RUNS (default 7), ROUNDS (the large
# table's, default 5), CLASSBENCH (another filter set file), FWD_BIN (a
# fwd binary to measure instead of this checkout's), FWD_BASE (a fwd
# binary flows7 measures too, in the same rotation, to compare builds),
# PERF_STAT=1 (flows7 also counts, with perf stat, the kernel work items
# queued and the context switches during each flood). Environment: DURATION, QUEUES (fwd --queues, default:
# CPUs), PARALLEL (default 64), METRICS=1 adds a mode (d): fwd batch with
# --metrics 127.0.0.1:9101 in the server namespace, scraped every second
# while it is measured (the before/after of the metrics).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "bench-live: run as root (sudo make bench-live)" >&2
	exit 1
fi
go=${GO:-go}
for tool in ip iptables-restore conntrack nginx "$go"; do
	command -v "$tool" >/dev/null || { echo "bench-live: $tool is missing (sudo make deps)" >&2; exit 1; }
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
dur=${DURATION:-3}
queues=${QUEUES:-$(nproc)}
parallel=${PARALLEL:-64}
tmp=$(mktemp -d /tmp/fwd-bench.XXXXXX)
# Named per run: two runs at once on one machine (other checkouts) would
# otherwise delete each other's namespaces.
C=fwd-bench-client-$$
S=fwd-bench-server-$$
fwd_pid=""
nginx_pid=""

cleanup() {
	trap - EXIT INT TERM
	if [ -n "$nginx_pid" ]; then kill -TERM "$nginx_pid" 2>/dev/null || true; fi
	if [ -n "$fwd_pid" ]; then kill -TERM "$fwd_pid" 2>/dev/null || true; wait "$fwd_pid" 2>/dev/null || true; fi
	if [ -x "$tmp/loadgen" ]; then "$tmp/loadgen" teardown -client "$C" -server "$S" || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building fwd and loadgen" >&2
(cd "$repo" && "$go" build -o "$tmp/loadgen" ./bench/live/loadgen)
if [ -n "${FWD_BIN:-}" ]; then
	cp "$FWD_BIN" "$tmp/fwd" # another build of fwd, to compare
else
	(cd "$repo" && "$go" build -o "$tmp/fwd" ./cmd/fwd)
fi

# The namespaces, joined by a veth pair: the server 198.18.0.1/15, the
# client 198.18.0.2/15 and 198.18.1.1-16/15 (/15 on both ends: the
# flood's sources, 198.19.0.0/16, are on-link).
"$tmp/loadgen" setup -client "$C" -server "$S" -dst 198.18.0.1 -sources 198.18.1.1-198.18.1.16
ip netns exec "$S" sh -c 'echo 0 >/proc/sys/net/ipv4/conf/all/rp_filter; echo 0 >/proc/sys/net/ipv4/conf/eth0/rp_filter'
# Connection storms: a deep accept queue, TIME_WAIT reuse on the client.
ip netns exec "$S" sh -c 'echo 4096 >/proc/sys/net/core/somaxconn; echo 8192 >/proc/sys/net/ipv4/tcp_max_syn_backlog'
ip netns exec "$C" sh -c 'echo 1 >/proc/sys/net/ipv4/tcp_tw_reuse; echo "1024 65000" >/proc/sys/net/ipv4/ip_local_port_range'
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<NGINX
user root;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 198.18.0.1:80 backlog=4096;
    location / { return 204; }
  }
}
NGINX
ip netns exec "$S" nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
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
	ip netns exec "$S" conntrack -F >/dev/null 2>&1 || true
	c=$("$tmp/loadgen" tcpconns -client "$C" -server "$S" -port 80 -parallel "$parallel" -duration "${dur}s")
	echo "$u $c gbit_per_s=$t runs=$(IFS=/; echo "${runs[*]}")"
}

# queued_total: packets queued so far over all queues (id_sequence).
queued_total() { ip netns exec "$S" cat /proc/net/netfilter/nfnetlink_queue | awk '{n += $8} END {print n+0}'; }
# cpu_ticks PID: user+system clock ticks of a process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# start_fwd RULES KEY [FLAGS...]: fwd ($fwd_bin, default this checkout's)
# with RULES in the server namespace, once its kernel rules are in place;
# stop_fwd ends it.
start_fwd() {
	local rules=$1 key=$2
	shift 2
	ip netns exec "$S" "${fwd_bin:-$tmp/fwd}" --rules "$rules" --socket "$tmp/fwd.sock" --queues "$queues" --log-level warn "$@" 2>"$tmp/fwd-$key.log" &
	fwd_pid=$!
	for _ in $(seq 100); do
		ip netns exec "$S" iptables-save 2>/dev/null | grep -q FWD-INPUT && break
		sleep 0.1
	done
	sleep 0.5
}
stop_fwd() {
	kill -TERM "$fwd_pid"
	wait "$fwd_pid" || true
	fwd_pid=""
}

# run_fwd IO [KEY [FLAGS...]]: measure with fwd --queue-io=IO and FLAGS;
# sets res[KEY] and qs[KEY] (KEY defaults to IO).
declare -A qs
run_fwd() {
	local io=$1 key=${2:-$1}
	shift $(($# < 2 ? $# : 2))
	start_fwd "$tmp/rules.yaml" "$key" --queue-io "$io" "$@"
	local q0 t0 q1 t1
	local scraper=""
	if [[ " $* " == *" --metrics "* ]]; then
		# Scraped every second while measured, as a busy Prometheus would.
		ip netns exec "$S" sh -c 'while :; do curl -s -o /dev/null http://127.0.0.1:9101/metrics; sleep 1; done' &
		scraper=$!
	fi
	q0=$(queued_total); t0=$(cpu_ticks "$fwd_pid")
	res[$key]=$(measure)
	q1=$(queued_total); t1=$(cpu_ticks "$fwd_pid")
	if [ -n "$scraper" ]; then
		ip netns exec "$S" curl -s http://127.0.0.1:9101/metrics | grep -E '^fwd_(flows_accepted_total|verdict_latency_seconds_(sum|count)) ' >"$tmp/metrics-$key.txt" || true
		kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true
	fi
	qs[$key]=$(ip netns exec "$S" cat /proc/net/netfilter/nfnetlink_queue)
	res[$key]+=" queued=$((q1 - q0)) cpu_us_per_pkt=$(awk -v t=$((t1 - t0)) -v q=$((q1 - q0)) -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (q>0 ? t*1e6/hz/q : 0)}')"
	stop_fwd
}


declare -A res
for _ in $(seq 50); do
	ip netns exec "$C" sh -c 'exec 3<>/dev/tcp/198.18.0.1/80' 2>/dev/null && break
	sleep 0.1
done
sections=${SECTIONS:-basic flows7 large}
pct() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0f%%", (b>0 ? 100*a/b : 0)}'; }
if [[ " $sections " == *" basic "* ]]; then
	echo "mode 0: no firewall" >&2
	res[none]=$(measure)

	echo "mode a: plain iptables" >&2
	ip netns exec "$S" iptables-restore --noflush <"$tmp/iptables.rules"
	res[iptables]=$(measure)
	ip netns exec "$S" iptables-restore <<<$'*filter\nCOMMIT'

	echo "mode b: fwd --queues $queues --queue-io batch" >&2
	run_fwd batch
	modes="none iptables batch"
	if [ "${METRICS:-0}" = 1 ]; then
		# Right after (b), not last: the mode that runs last of a run measures
		# slower whatever it is (fwd batch run again last: 60% where it gave
		# 91% third), so (d) and (b) are compared next to each other.
		echo "mode d: fwd --queues $queues --queue-io batch --metrics 127.0.0.1:9101" >&2
		run_fwd batch metrics --metrics 127.0.0.1:9101
		modes+=" metrics"
	fi
	echo "mode c: fwd --queues $queues --queue-io simple" >&2
	run_fwd simple
	modes+=" simple"

	base_flows=$(field flows_per_s "${res[iptables]}")
	base_conns=$(field conns_per_s "${res[iptables]}")
	base_bulk=$(field gbit_per_s "${res[iptables]}")
	echo
	echo "fwd live benchmark: $(nproc) CPUs, ${dur}s per measurement, fwd --queues $queues, $parallel parallel connects, $(uname -r)"
	echo
	echo "| mode | sent/s | new UDP flows/s | vs (a) | TCP conns/s | vs (a) | TCP Gbit/s | vs (a) | fwd CPU µs/queued pkt | TCP runs |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for m in $modes; do
		r=${res[$m]}
		flows=$(field flows_per_s "$r")
		conns=$(field conns_per_s "$r")
		bulk=$(field gbit_per_s "$r")
		cpu=$(field cpu_us_per_pkt "$r")
		case $m in
		none) name="(0) no firewall" ;;
		iptables) name="(a) plain iptables ACCEPT" ;;
		batch) name="(b) fwd --queue-io=batch" ;;
		simple) name="(c) fwd --queue-io=simple" ;;
		metrics) name="(d) fwd --queue-io=batch --metrics" ;;
		esac
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(field sent_per_s "$r")" \
			"$flows" "$(pct "$flows" "$base_flows")" "$conns" "$(pct "$conns" "$base_conns")" \
			"$bulk" "$(pct "$bulk" "$base_bulk")" "${cpu:--}" "$(sed -n 's/.*runs=\([0-9./]*\).*/\1/p' <<<"$r")"
	done
	echo
	for m in ${modes#none iptables }; do
		echo "fwd ($m): $(field queued "${res[$m]}") packets queued; failed connects $(field failed "${res[$m]}"); kernel queue counters after the run (queue portid waiting copymode copyrange queue_dropped user_dropped id_seq 1):"
		echo "${qs[$m]}" | sed 's/^/  /'
	done
	if [ -s "$tmp/metrics-metrics.txt" ]; then
		echo "fwd --metrics after mode (d) (verdict latency sampled 1 in 64):"
		sed 's/^/  /' "$tmp/metrics-metrics.txt"
	fi
fi

# shellcheck source=bench/live/sections.sh
. "$repo/bench/live/sections.sh"
if [[ " $sections " == *" flows7 "* ]]; then flows7_section; fi
if [[ " $sections " == *" large "* ]]; then large_section; fi
