# shellcheck shell=bash
# bench.sh (library): small helpers of scripts/bench.sh: statistics over
# repeated measurements, btperf and ping runs in a namespace, interface byte
# counters, kernel MPTCP set-up and removal. Source it after testbed.sh.
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

# bn_mptcp_on NS_C NS_S: kernel MPTCP on the testbed's two links: subflow and
# add_addr limits on both ends, a subflow endpoint on the client's DSL
# address, and source policy routing in the client namespace (which has no
# default route) so a subflow from each address leaves by its own link.
bn_mptcp_on() {
	local c=$1 s=$2
	ip -n "$c" mptcp limits set subflows 2 add_addr_accepted 2 &&
		ip -n "$s" mptcp limits set subflows 2 add_addr_accepted 2 &&
		ip -n "$c" mptcp endpoint add 10.100.2.2 dev up1 subflow &&
		ip -n "$c" route add default via 10.100.1.1 dev up0 table 100 &&
		ip -n "$c" route add default via 10.100.2.1 dev up1 table 101 &&
		ip -n "$c" rule add pref 1000 from 10.100.1.2 table 100 &&
		ip -n "$c" rule add pref 1001 from 10.100.2.2 table 101
}

# bn_mptcp_off NS_C: remove what bn_mptcp_on added in the client namespace
# (bondtun installs its own per-uplink tables and rules for the same
# addresses). Returns non-zero if something is left.
bn_mptcp_off() {
	local c=$1
	ip -n "$c" rule del pref 1000 2>/dev/null || true
	ip -n "$c" rule del pref 1001 2>/dev/null || true
	ip -n "$c" route flush table 100 2>/dev/null || true
	ip -n "$c" route flush table 101 2>/dev/null || true
	ip -n "$c" mptcp endpoint flush 2>/dev/null || true
	! ip -n "$c" rule show | grep -qE '^100[01]:' &&
		[[ -z $(ip -n "$c" mptcp endpoint show) ]]
}
