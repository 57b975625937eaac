# shellcheck shell=bash
# bench.sh (library): small helpers of scripts/bench.sh: statistics over
# repeated measurements, btperf and ping runs in a namespace, interface byte
# counters, kernel MPTCP set-up and removal (2 or 3 links), the bondtun client
# configuration for 3 uplinks. Source it after testbed.sh.
#
# Every function that measures is bounded in time (timeout(1)) and prints
# nothing or "-" instead of failing, so one failed run does not end a benchmark.

# bn_log MSG...: progress on stderr, with the UTC time.
bn_log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# bn_stats: numbers on stdin (one per line, blanks ignored) -> "median min max",
# or "- - -" if there are none. The median of an even count is the mean of the
# two middle values.
bn_stats() {
	awk '/^[0-9.]+$/' | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- - -"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.1f %.1f %.1f\n", m, v[1], v[NR]
		}'
}

# bn_median: numbers on stdin -> their median with 2 decimals, or "-".
bn_median() {
	awk '/^[0-9.]+$/' | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "-"; exit }
			printf "%.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

# bn_p95: numbers on stdin -> their 95th percentile (nearest rank), or "-".
bn_p95() {
	awk '/^[0-9.]+$/' | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "-"; exit }
			r = int(0.95 * NR); if (r < 0.95 * NR) r++
			printf "%.2f\n", v[r]
		}'
}

# bn_ratio A B: A/B with 2 decimals, or "-" if either is missing or B is 0.
bn_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "-"
		else printf "%.2f\n", a / b }'
}

# bn_share A B: A as a percentage of A+B (integer), or "-" if both are 0.
bn_share() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a + b > 0) printf "%.0f\n", 100 * a / (a + b); else print "-" }'
}

# bn_cell FILE: "median (min–max)" of the numbers in FILE, or "-".
bn_cell() {
	local med lo hi
	read -r med lo hi < <(bn_stats 2>/dev/null <"$1" || echo "- - -")
	if [[ $med == - ]]; then echo "-"; elif [[ $lo == "$hi" ]]; then echo "$med"; else echo "$med ($lo–$hi)"; fi
}

# bn_med FILE: the median of the numbers in FILE (1 decimal), or "-".
bn_med() {
	local med _lo _hi
	read -r med _lo _hi < <(bn_stats 2>/dev/null <"$1" || echo "- - -")
	echo "$med"
}

# bn_ping_rtts NS ARGS...: run ping ARGS in NS (bounded by 60 s); prints one
# RTT in ms per reply, in order.
bn_ping_rtts() {
	local ns=$1
	shift
	timeout -k 2 60 ip netns exec "$ns" ping -n "$@" 2>/dev/null | sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' || true
}

# bn_bytes NS DEV rx|tx: the interface's byte counter in NS.
bn_bytes() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3_bytes"; }

# bn_mptcp_on_n NS_C NS_S N: kernel MPTCP on the testbed's first N links
# (N = 2 or 3; link i is the client's up$i, 10.100.$((i+1)).2, gateway
# 10.100.$((i+1)).1): subflow and add_addr limits N on both ends, a subflow
# endpoint on each client address but the first (10.100.2.2, and 10.100.3.2
# when N = 3), and source policy routing in the client namespace (which has no
# default route): table 100+i holds "default via 10.100.$((i+1)).1 dev up$i",
# looked up by rule pref 1000+i for that address, so a subflow from each
# address leaves by its own link.
bn_mptcp_on_n() {
	local c=$1 s=$2 n=${3:-2} i
	[[ $n =~ ^[1-8]$ ]] || return 1
	ip -n "$c" mptcp limits set subflows "$n" add_addr_accepted "$n" &&
		ip -n "$s" mptcp limits set subflows "$n" add_addr_accepted "$n" || return 1
	for ((i = 0; i < n; i++)); do
		if ((i > 0)); then
			ip -n "$c" mptcp endpoint add "10.100.$((i + 1)).2" dev "up$i" subflow || return 1
		fi
		ip -n "$c" route add default via "10.100.$((i + 1)).1" dev "up$i" table $((100 + i)) &&
			ip -n "$c" rule add pref $((1000 + i)) from "10.100.$((i + 1)).2" table $((100 + i)) || return 1
	done
}

# bn_mptcp_off_n NS_C [N]: remove what bn_mptcp_on_n added in the client
# namespace for links 0..N-1 (default 3, which also covers N = 2; bondtun
# installs its own per-uplink tables and rules for the same addresses).
# Returns non-zero if something is left.
bn_mptcp_off_n() {
	local c=$1 n=${2:-3} i
	for ((i = 0; i < n; i++)); do
		ip -n "$c" rule del pref $((1000 + i)) 2>/dev/null || true
		ip -n "$c" route flush table $((100 + i)) 2>/dev/null || true
	done
	ip -n "$c" mptcp endpoint flush 2>/dev/null || true
	for ((i = 0; i < n; i++)); do
		! grep -q "^$((1000 + i)):" <<<"$(ip -n "$c" rule show)" || return 1
	done
	[[ -z $(ip -n "$c" mptcp endpoint show) ]]
}

# bn_mptcp_on NS_C NS_S: kernel MPTCP on the testbed's two links (see
# bn_mptcp_on_n).
bn_mptcp_on() { bn_mptcp_on_n "$1" "$2" 2; }

# bn_mptcp_off NS_C: remove what bn_mptcp_on added in the client namespace.
# Returns non-zero if something is left.
bn_mptcp_off() { bn_mptcp_off_n "$1" 2; }

# bn_client_config SRC DST N: write a bondtun client configuration for N (2 or
# 3) uplinks to DST: SRC (configs/client.yaml, whose uplinks are cable on up0
# and dsl on up1) as it is for N = 2; for N = 3 with a third uplink "lte"
# (interface up2, address 10.100.3.2, gateway 10.100.3.1, tier primary)
# appended to its uplinks list. Returns non-zero if SRC has no uplinks list or
# already has an uplink on up2.
bn_client_config() {
	local src=$1 dst=$2 n=${3:-2}
	grep -q '^uplinks:' "$src" || return 1
	if ((n == 2)); then
		cp "$src" "$dst"
		return
	fi
	((n == 3)) || return 1
	! grep -qE '^[[:space:]]+interface:[[:space:]]*up2([[:space:]]|$)' "$src" || return 1
	# Insert after the last line of the uplinks block (the block ends at the
	# next top-level key; trailing blank or comment lines stay after it).
	awk '
		function flush_lte() {
			print "  - name: lte"
			print "    interface: up2"
			print "    address: 10.100.3.2"
			print "    gateway: 10.100.3.1"
			print "    tier: primary"
			done = 1
		}
		/^uplinks:/ { inup = 1; print; next }
		inup && /^[^[:space:]#]/ { flush_lte(); inup = 0; for (i = 0; i < nheld; i++) print held[i]; nheld = 0 }
		inup && (/^[[:space:]]*$/ || /^#/) { held[nheld++] = $0; next }
		inup { for (i = 0; i < nheld; i++) print held[i]; nheld = 0 }
		{ print }
		END { if (inup) { flush_lte(); for (i = 0; i < nheld; i++) print held[i] } if (!done) exit 1 }
	' "$src" >"$dst"
}

# bn_queue_bytes RATE_MBIT MS: a queue of MS milliseconds of a RATE_MBIT
# Mbit/s link in bytes (rate × ms / 8), at least 3000.
bn_queue_bytes() {
	awk -v r="$1" -v ms="$2" 'BEGIN { b = int(r * 1e6 * ms / 1000 / 8 + 0.5); if (b < 3000) b = 3000; print b }'
}

# bn_min: numbers on stdin -> their minimum with 2 decimals, or "-".
bn_min() {
	awk '/^[0-9.]+$/ { if (n++ == 0 || $1 < m) m = $1 } END { if (n) printf "%.2f\n", m; else print "-" }'
}

# bn_result_field FILE KEY: the value of KEY in the last RESULT line of a
# btperf output FILE, or nothing.
bn_result_field() {
	sed -n "s/^RESULT.*[[:space:]]$2=\([0-9.]*\).*/\1/p" "$1" 2>/dev/null | tail -n 1
}

# ---------------------------------------------------------------------------
# Run helpers of scripts/bench-sweep.sh and scripts/bench-short.sh. They use
# the calling script's globals: PIDS (array of every background process it
# started and has not reaped; its cleanup trap ends exactly these), BIN
# (bondtun, btperf), WORK (scratch directory), TB_NS_C and TB_NS_S.

# bn_untrack PID: drop a reaped process from PIDS.
bn_untrack() {
	local keep=() p
	for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# bn_perf_start LIMIT_S OUTFILE ARGS...: start `btperf client ARGS` in the
# client namespace in the background, killed after LIMIT_S seconds; sets
# BN_PID.
bn_perf_start() {
	local lim=$1 f=$2
	shift 2
	timeout -k 5 "$lim" ip netns exec "$TB_NS_C" "$BIN/btperf" client "$@" >"$f" 2>&1 &
	BN_PID=$!
	PIDS+=("$BN_PID")
}

# bn_perf_wait PID OUTFILE: wait for a btperf client started by
# bn_perf_start; returns 0 if it succeeded and printed a RESULT line,
# otherwise logs a warning and returns 1.
bn_perf_wait() {
	local rc=0
	wait "$1" || rc=$?
	bn_untrack "$1"
	if [[ $rc != 0 ]] || ! grep -q '^RESULT mbps=' "$2"; then
		bn_log "WARNING: btperf failed (exit $rc): $(tail -n 2 "$2" | tr '\n' ' ')"
		return 1
	fi
}

# bn_counters DIR N: the client's up0..up(N-1) byte counters in the direction
# the data flows (rx for a download, tx for an upload), space separated.
bn_counters() {
	local k=rx i out=()
	[[ $1 == up ]] && k=tx
	for ((i = 0; i < $2; i++)); do out+=("$(bn_bytes "$TB_NS_C" "up$i" $k)"); done
	echo "${out[*]}"
}

# bn_shares "A B [C]": each number as a whole percentage of their sum,
# joined by "/", e.g. "71/29"; "-" if the sum is 0.
bn_shares() {
	awk -v v="$1" 'BEGIN {
		n = split(v, a, " "); for (i = 1; i <= n; i++) s += a[i]
		if (s <= 0) { print "-"; exit }
		for (i = 1; i <= n; i++) printf "%s%.0f", (i > 1 ? "/" : ""), 100 * a[i] / s
		print "" }'
}

# bn_bondtun_start SERVER_CONF CLIENT_CONF LOGPREFIX: `bondtun up` in the
# server then the client namespace (logs LOGPREFIX-server.log and
# LOGPREFIX-client.log), then wait up to 15 s for a ping through the tunnel.
# Sets BN_BT_S and BN_BT_C (PIDs, also in PIDS).
bn_bondtun_start() {
	local sc=$1 cc=$2 lp=$3 end
	chmod 600 "$sc" "$cc" # `bondtun up` refuses a private key others can read
	ip netns exec "$TB_NS_S" "$BIN/bondtun" up -c "$sc" 2>"$lp-server.log" &
	BN_BT_S=$!
	PIDS+=("$BN_BT_S")
	sleep 0.3
	ip netns exec "$TB_NS_C" "$BIN/bondtun" up -c "$cc" 2>"$lp-client.log" &
	BN_BT_C=$!
	PIDS+=("$BN_BT_C")
	end=$((SECONDS + 15))
	while ((SECONDS < end)); do
		timeout 3 ip netns exec "$TB_NS_C" ping -c1 -W1 10.77.0.1 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	bn_log "the tunnel did not come up; logs:"
	tail -n 20 "$lp-server.log" "$lp-client.log" >&2
	return 1
}

# bn_bondtun_stop PID NS CONFIG: SIGTERM, up to 5 s to exit, then SIGKILL and
# `bondtun down`. Returns 1 if it had to kill.
bn_bondtun_stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		bn_log "WARNING: bondtun $pid ignored SIGTERM for 5 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		bn_untrack "$pid"
		timeout 10 ip netns exec "$2" "$BIN/bondtun" down -c "$3" >/dev/null 2>&1 || true
		return 1
	fi
	wait "$pid" 2>/dev/null || true
	bn_untrack "$pid"
}

# bn_load1: the 1-minute load average.
bn_load1() { cut -d' ' -f1 /proc/loadavg; }
