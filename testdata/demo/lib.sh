# Shared by the demos (demo.sh, demo-docker.sh): sourced, not run. The
# caller sets C and S (the client and server namespaces), tmp and repo.

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

# try LABEL URL [curl args]: one request from the client, PASS or DROPPED.
try() {
	local label=$1 url=$2
	shift 2
	local out
	if out=$(ip netns exec "$C" curl -sSk --max-time 2 "$@" "$url" 2>&1); then
		printf '  %-34s \033[32mPASS\033[0m     %s\n' "$label" "$(echo "$out" | head -1)"
	else
		printf '  %-34s \033[31mDROPPED\033[0m  (no answer within 2s: fwd drops silently)\n' "$label"
	fi
}

# build_fwd builds fwd and fwctl into $tmp; fwctl then talks to the
# demo's fwd.
build_fwd() {
	say "building fwd and fwctl"
	(cd "$repo" && "$go" build -o "$tmp/fwd" ./cmd/fwd && "$go" build -o "$tmp/fwctl" ./cmd/fwctl)
}
fwctl() { "$tmp/fwctl" --socket "$tmp/fwd.sock" "$@"; }

# make_network joins $C and $S by a veth pair: client 198.18.0.2 and
# 2001:db8::2, server 198.18.0.1 and 2001:db8::1, no route out.
make_network() {
	say "network: client ($C) <-> server ($S)"
	for ns in "$C" "$S"; do
		ip netns del "$ns" 2>/dev/null || true
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	done
	ip -n "$C" link add eth0 type veth peer name eth0 netns "$S"
	ip -n "$C" addr add 198.18.0.2/24 dev eth0
	ip -n "$C" addr add 2001:db8::2/64 dev eth0 nodad
	ip -n "$S" addr add 198.18.0.1/24 dev eth0
	ip -n "$S" addr add 2001:db8::1/64 dev eth0 nodad
	ip -n "$C" link set eth0 up
	ip -n "$S" link set eth0 up
	echo "  client 198.18.0.2, 2001:db8::2    server 198.18.0.1, 2001:db8::1"
}

# remove_network kills what runs in $C and $S and deletes them.
remove_network() {
	for ns in "$C" "$S"; do
		if ip netns list | grep -qw "$ns"; then
			ip netns pids "$ns" | xargs -r kill -9 2>/dev/null || true
			ip netns del "$ns" 2>/dev/null || true
		fi
	done
}

# start_fwd runs fwd in $S on a copy of rules/default.yaml, sets fwd_pid
# and waits for its control socket (it exits, showing fwd's log, when fwd
# does not start).
start_fwd() {
	cp "$repo/rules/default.yaml" "$tmp/rules.yaml"
	ip netns exec "$S" "$tmp/fwd" --rules "$tmp/rules.yaml" --socket "$tmp/fwd.sock" --queues 2 2>"$tmp/fwd.log" &
	fwd_pid=$!
	for _ in $(seq 100); do
		grep -q "control socket" "$tmp/fwd.log" && break
		kill -0 "$fwd_pid" 2>/dev/null || { cat "$tmp/fwd.log"; exit 1; }
		sleep 0.1
	done
	grep -q "control socket" "$tmp/fwd.log" || { echo "fwd did not start:"; cat "$tmp/fwd.log"; exit 1; }
}

# stop_pid PID: SIGTERM and wait, when it runs.
stop_pid() {
	if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
		kill -TERM "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}
