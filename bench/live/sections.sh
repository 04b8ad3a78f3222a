# Sourced by bench/live/run.sh: the sections after the first table.
#   flows7: new UDP flows/s, plain iptables and fwd, 7 runs with the
#     order rotated every run (whichever runs later reads lower on a
#     loaded machine), medians and their ratio; FWD_BASE=BINARY adds
#     another build of fwd to the rotation, to compare builds.
#   large: the large table (ClassBench, bench/live/loadgen bigtable) as
#     linear iptables, one nftables interval set, fwd, fwd with one
#     rule, and no firewall (the ceiling); new flows/s over ROUNDS rounds
#     (default 5), the order rotated every round, medians.
# They use run.sh's variables and functions: $tmp, $S, $C, $dur, $queues,
# field, pct, start_fwd, stop_fwd.


# median: the median of the numbers on stdin (the lower middle for an
# even count).
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# flood M: one udpflows measurement for mode M, its flows/s appended to
# got[M]; with PERF_STAT=1, perf stat counts over the middle of it the
# kernel work items queued and the context switches, whole machine, per
# second, appended to wq[M] and cs[M] (what the nap cost: issue 15,
# bench/RESULTS.md "Session 4"). Uses flows7_section's arrays.
flood() {
	local m=$1 pid="" out
	if [ "${PERF_STAT:-0}" = 1 ]; then
		(sleep 0.5; exec perf stat -a -x, -e workqueue:workqueue_queue_work,context-switches -o "$tmp/stat-$m" -- sleep $((dur - 1))) &
		pid=$!
	fi
	out=$("$tmp/loadgen" udpflows -client "$C" -server "$S" -duration "${dur}s")
	got[$m]+=" $(field flows_per_s "$out")"
	if [ -n "$pid" ]; then
		wait "$pid" || true
		wq[$m]+=" $(awk -F, -v s=$((dur - 1)) '/workqueue_queue_work/{printf "%d", $1 / s}' "$tmp/stat-$m")"
		cs[$m]+=" $(awk -F, -v s=$((dur - 1)) '/context-switches/{printf "%d", $1 / s}' "$tmp/stat-$m")"
	fi
}

flows7_section() {
	local runs=${FLOWS_RUNS:-7} i j m
	local -A got=() cpu=() wq=() cs=()
	if [ "${PERF_STAT:-0}" = 1 ] && ! command -v perf >/dev/null; then
		echo "flows7: PERF_STAT=1 needs perf (apt-get install linux-perf)" >&2
		return 1
	fi
	local modes=(iptables fwd)
	if [ -n "${FWD_BASE:-}" ]; then
		cp "$FWD_BASE" "$tmp/fwd-base"
		modes+=(base)
	fi
	echo "new flows: $runs runs of ${modes[*]}, order rotated every run" >&2
	for i in $(seq "$runs"); do
		for j in $(seq 0 $((${#modes[@]} - 1))); do
			m=${modes[$(((i - 1 + j) % ${#modes[@]}))]}
			ip netns exec "$S" conntrack -F >/dev/null 2>&1 || true
			case $m in
			iptables)
				ip netns exec "$S" iptables-restore --noflush <"$tmp/iptables.rules"
				flood "$m"
				ip netns exec "$S" iptables-restore <<<$'*filter\nCOMMIT'
				;;
			fwd | base)
				if [ "$m" = base ]; then
					fwd_bin=$tmp/fwd-base start_fwd "$tmp/rules.yaml" flows7-base
				else
					start_fwd "$tmp/rules.yaml" flows7
				fi
				local q0 t0
				q0=$(queued_total)
				t0=$(cpu_ticks "$fwd_pid")
				flood "$m"
				cpu[$m]+=" $(awk -v t=$(($(cpu_ticks "$fwd_pid") - t0)) -v q=$(($(queued_total) - q0)) -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (q > 0 ? t * 1e6 / hz / q : 0)}')"
				stop_fwd
				;;
			esac
		done
	done
	local -A med=()
	for m in "${modes[@]}"; do
		med[$m]=$(tr ' ' '\n' <<<"${got[$m]}" | grep . | median)
	done
	local mi=${med[iptables]}
	echo
	echo "new UDP flows/s, $runs runs (the order of ${modes[*]} rotated by one every run), ${dur}s each:"
	echo
	cpumed() { tr ' ' '\n' <<<"${cpu[$1]}" | grep . | median; }
	echo "| mode | runs | median | vs (a) | fwd CPU µs/queued pkt, median |"
	echo "|---|---|---:|---:|---:|"
	echo "| (a) plain iptables ACCEPT | $(sed 's/^ //; s/ /, /g' <<<"${got[iptables]}") | $mi | 100% | - |"
	echo "| (b) fwd --queue-io=batch | $(sed 's/^ //; s/ /, /g' <<<"${got[fwd]}") | ${med[fwd]} | $(pct "${med[fwd]}" "$mi") | $(cpumed fwd) |"
	if [ -n "${med[base]:-}" ]; then
		echo "| (b0) FWD_BASE fwd --queue-io=batch | $(sed 's/^ //; s/ /, /g' <<<"${got[base]}") | ${med[base]} | $(pct "${med[base]}" "$mi") | $(cpumed base) |"
	fi
	echo
	echo "fwd ÷ plain iptables, medians: $(awk -v a="${med[fwd]}" -v b="$mi" 'BEGIN{printf "%.2f", (b > 0 ? a / b : 0)}')"
	if [ "${PERF_STAT:-0}" = 1 ]; then
		echo
		echo "PERF_STAT=1, whole machine during each flood, medians per second: kernel work items queued (workqueue:workqueue_queue_work), context switches"
		echo
		echo "| mode | work items/s | context switches/s |"
		echo "|---|---:|---:|"
		for m in "${modes[@]}"; do
			echo "| $m | $(tr ' ' '\n' <<<"${wq[$m]}" | grep . | median) | $(tr ' ' '\n' <<<"${cs[$m]}" | grep . | median) |"
		done
	fi
}

large_section() {
	local cb=${CLASSBENCH:-$repo/../shared/data/classbench/acl1_10k}
	if [ ! -r "$cb" ]; then
		echo
		echo "large table: skipped, $cb is missing (the ClassBench sets are read in place from ../shared/data/classbench beside the repository; CLASSBENCH=FILE names another)"
		return 0
	fi
	if ! command -v nft >/dev/null; then
		echo
		echo "large table: skipped, nft is missing (sudo make deps)"
		return 0
	fi
	mkdir -p "$tmp/big"
	local summary
	summary=$("$tmp/loadgen" bigtable -classbench "$cb" -out "$tmp/big")
	# Replies to the forged sources (a TCP reset, an ICMP port
	# unreachable) go nowhere, rather than to neighbour resolution of
	# addresses nobody has; unanswered SYNs leave conntrack as soon as
	# unanswered UDP flows do. The same for every variant.
	ip netns exec "$S" ip route add blackhole 198.19.0.0/16
	ip netns exec "$S" sh -c 'echo 5 >/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_syn_sent' 2>/dev/null || true
	local rounds=${ROUNDS:-5} r i v
	# none: no firewall at all, the ceiling of every variant on this
	# traffic (what the sender and the server's stack pass unfiltered).
	local variants=(linear nft fwd one none)
	local -A got=()
	echo "large table: $summary; $rounds rounds" >&2
	for r in $(seq "$rounds"); do
		for i in "${!variants[@]}"; do
			v=${variants[$(((i + r - 1) % ${#variants[@]}))]}
			ip netns exec "$S" conntrack -F >/dev/null 2>&1 || true
			case $v in
			linear) ip netns exec "$S" iptables-restore --noflush <"$tmp/big/iptables.rules" ;;
			nft) ip netns exec "$S" nft -f "$tmp/big/nft.rules" ;;
			fwd) start_fwd "$tmp/big/large.yaml" large ;;
			one) start_fwd "$tmp/big/one.yaml" one ;;
			esac
			got[$v]+=" $(field flows_per_s "$("$tmp/loadgen" tableflows -client "$C" -server "$S" -targets "$tmp/big/targets.txt" -duration "${dur}s")")"
			case $v in
			linear) ip netns exec "$S" iptables-restore <<<$'*filter\nCOMMIT' ;;
			nft) ip netns exec "$S" nft delete table ip fwdbench ;;
			fwd | one) stop_fwd ;;
			esac
		done
	done
	ip netns exec "$S" ip route del blackhole 198.19.0.0/16
	local -A med=()
	for v in "${variants[@]}"; do
		med[$v]=$(tr ' ' '\n' <<<"${got[$v]}" | grep . | median)
	done
	local rules kept
	rules=$(sed -n 's/.* rules=\([0-9]*\).*/\1/p' <<<"$summary")
	kept=$(sed -n 's/.* nft_kept=\([0-9]*\).*/\1/p' <<<"$summary")
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b > 0 ? a / b : 0)}'; }
	echo
	echo "large table: $(basename "$cb") converted ($summary), sources mapped into 198.19.0.0/16; new flows (TCP SYNs and UDP datagrams) at $(sed -n 's/.* targets=\([0-9]*\).*/\1/p' <<<"$summary") rules of the set, drawn at random; $rounds rounds, order rotated, ${dur}s each"
	echo
	echo "| variant | rules | new flows/s, rounds | median | fwd ÷ variant |"
	echo "|---|---:|---|---:|---:|"
	echo "| (a) linear iptables, one rule per rule | $rules | $(sed 's/^ //; s/ /, /g' <<<"${got[linear]}") | ${med[linear]} | $(ratio "${med[fwd]}" "${med[linear]}") |"
	echo "| (b) nftables interval set ip saddr . meta l4proto . th dport | $kept (first of overlapping kept) | $(sed 's/^ //; s/ /, /g' <<<"${got[nft]}") | ${med[nft]} | $(ratio "${med[fwd]}" "${med[nft]}") |"
	echo "| (c) fwd, the same rules | $rules | $(sed 's/^ //; s/ /, /g' <<<"${got[fwd]}") | ${med[fwd]} | 1.00 |"
	echo "| (d) fwd, one rule | 1 | $(sed 's/^ //; s/ /, /g' <<<"${got[one]}") | ${med[one]} | $(ratio "${med[fwd]}" "${med[one]}") |"
	echo "| (0) no firewall: the ceiling | 0 | $(sed 's/^ //; s/ /, /g' <<<"${got[none]}") | ${med[none]} | $(ratio "${med[fwd]}" "${med[none]}") |"
	echo
	echo "goals: fwd ÷ nft set $(ratio "${med[fwd]}" "${med[nft]}") (≥ 0.9), fwd ÷ linear $(ratio "${med[fwd]}" "${med[linear]}") (≥ 20), fwd large ÷ fwd one rule $(ratio "${med[fwd]}" "${med[one]}") (≥ 0.9)"
	echo "ceiling: no firewall ÷ linear $(ratio "${med[none]}" "${med[linear]}"), nft set ÷ linear $(ratio "${med[nft]}" "${med[linear]}"): no filter can be more than the first times linear on this traffic"
}
