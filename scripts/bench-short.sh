#!/usr/bin/env bash
# bench-short.sh: short fixed-size transfers through bondtun, the cable alone
# and kernel MPTCP, against the ideal time on the links' summed goodput.
#
#   scripts/bench-short.sh
#
# Scenario H of the testbed (scripts/lib/testbed.sh defaults: cable 50 Mbit/s
# 10 ms + DSL 20 Mbit/s 30 ms one way, queues 1 BDP). For each direction (down:
# the server sends, up: the client sends) it measures:
#   1. both links' own goodput at the same time, one flow per link, Cubic,
#      SHORT_LINK_T seconds with the first 2 left out (bondtun not running),
#      SHORT_LINK_REPS times; the sum's median gives the ideal time of a
#      transfer, size × 8 / sum;
#   2. for each size in SHORT_SIZES (MB, 10^6 bytes), SHORT_REPS transfers of
#      exactly that many bytes (btperf -bytes, one TCP flow, Cubic; a fresh
#      connection per transfer; btperf's secs = header to end of data) over
#      the cable alone (bound to 10.100.1.2, to 10.100.1.1), then over kernel
#      MPTCP (one subflow per link), then through bondtun (`bondtun up` on both
#      sides, kept up for the direction's transfers), with 1 s between
#      transfers so queues drain.
# Output (stdout and out/short-DATE.md), medians over the repetitions:
#   SHORT scenario=H dir=down|up size_mb=… secs=… cable_secs=… mptcp_secs=… ideal_secs=… ratio_ideal=…
# secs = bondtun, ratio_ideal = secs / ideal_secs; plus a Markdown table with
# medians and min–max. Progress goes to stderr.
#
# Environment: SHORT_REPS [5], SHORT_SIZES ["5 30"], SHORT_LINK_T [8],
# SHORT_LINK_REPS [1], BIN [./bin], BENCH_BUILD [1] (0: use the binaries in
# BIN as they are), TB_RTPRIO (see testbed.sh). Root only (prints SKIP and
# exits 0 otherwise). Ends only the processes it started and deletes only its
# namespaces on exit, also when interrupted. Exit status 1 if a measurement
# failed, 2 on bad arguments.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
	echo "SKIP: bench-short.sh needs root (network namespaces, TUN devices)"
	exit 0
fi
REPS=${SHORT_REPS:-5}
read -ra SIZES <<<"${SHORT_SIZES:-5 30}"
LT=${SHORT_LINK_T:-8}
LREPS=${SHORT_LINK_REPS:-1}
LOMIT=2
BIN=${BIN:-./bin}
if ! [[ $REPS =~ ^[0-9]+$ && $LT =~ ^[0-9]+$ && $LREPS =~ ^[0-9]+$ ]] || ((REPS < 1 || LREPS < 1 || LT <= LOMIT)); then
	echo "bench-short.sh: need integers SHORT_REPS >= 1, SHORT_LINK_REPS >= 1, SHORT_LINK_T > $LOMIT" >&2
	exit 2
fi
((${#SIZES[@]})) || { echo "bench-short.sh: SHORT_SIZES is empty" >&2; exit 2; }
for s in "${SIZES[@]}"; do
	[[ $s =~ ^[0-9]+$ ]] && ((s >= 1 && s <= 1000)) || { echo "bench-short.sh: bad size $s (whole MB, 1..1000)" >&2; exit 2; }
done
for t in ip ping timeout; do
	command -v "$t" >/dev/null || { echo "SKIP: $t missing (scripts/setup.sh installs it)"; exit 0; }
done

# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
# shellcheck source=lib/bench.sh
source scripts/lib/bench.sh

WORK=$(mktemp -d /tmp/bondtun-short.XXXXXX)
PIDS=() # every background process this script started and has not reaped
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	set +e
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	PIDS=()
	tb_teardown
	rm -rf "$WORK"
	if [[ -n ${REPORT:-} && -z ${DONE:-} ]]; then
		printf '\nINCOMPLETE: bench-short.sh ended early (interrupted or failed).\n' | tee -a "$REPORT"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ${BENCH_BUILD:-1} != 0 ]]; then
	bn_log "building into $BIN"
	# shellcheck source=lib/version.sh
	source scripts/lib/version.sh
	bt_build -o "$BIN/" ./cmd/... || exit 1
fi
export LINKEMU=$BIN/linkemu
for b in bondtun btperf linkemu; do
	[[ -x $BIN/$b ]] || { echo "bench-short.sh: no $BIN/$b (set BIN or BENCH_BUILD=1)" >&2; exit 1; }
done

mkdir -p out
REPORT=out/short-$(date -u +%Y%m%dT%H%M%SZ).md
: >"$REPORT"
FAILED=0
emit() { tee -a "$REPORT"; }

# Deadline of one transfer: at least 30 s, or 4 × the cable-alone time.
DEADLINE=30
for s in "${SIZES[@]}"; do ((s * 8 / 12 > DEADLINE)) && DEADLINE=$((s * 8 / 12)); done
# Expected: links (LT + 1 s) × LREPS, and per transfer its time at ~60
# (tunnel, MPTCP) and ~48 Mbit/s (cable) plus ~1.5 s around it, both directions.
EST=$(awk -v r="$REPS" -v lt="$LT" -v lr="$LREPS" -v sizes="${SIZES[*]}" 'BEGIN {
	n = split(sizes, a, " "); for (i = 1; i <= n; i++) t += r * (2 * a[i] * 8 / 60 + a[i] * 8 / 48 + 3 * 1.5)
	printf "%d\n", 2 * (t + lr * (lt + 1) + 4) + 5 }')
bn_log "${#SIZES[@]} size(s) × 2 directions × $REPS rep(s) × 3 paths: expected ~$((EST / 60)) min $((EST % 60)) s"

# H, set explicitly (as scripts/bench.sh does), and no third link.
export CABLE_RATE=50mbit CABLE_DELAY=10ms CABLE_JITTER=0s CABLE_LOSS=0 CABLE_QUEUE=auto CABLE_ARGS=
export DSL_RATE=20mbit DSL_DELAY=30ms DSL_JITTER=0s DSL_LOSS=0 DSL_QUEUE=auto DSL_ARGS=
unset LTE_RATE LTE_DELAY LTE_JITTER LTE_LOSS LTE_QUEUE LTE_ARGS
SCONF=$WORK/server.yaml
CCONF=$WORK/client.yaml
cp configs/server.yaml "$SCONF"
bn_client_config configs/client.yaml "$CCONF" 2

R=$WORK/res
mkdir -p "$R"

# links DIR: both links at once, LREPS times; appends the sums to R/sum-DIR.
links() {
	local dir=$1 rep a pc pd c d
	a=(-P 1 -t "${LT}s" -omit "${LOMIT}s" -cc cubic)
	[[ $dir == down ]] && a+=(-reverse)
	for ((rep = 1; rep <= LREPS; rep++)); do
		bn_log "links alone: $dir, rep $rep/$LREPS"
		bn_perf_start $((LT + 40)) "$WORK/cable.out" -c 10.100.1.1:5201 -bind 10.100.1.2 "${a[@]}"
		pc=$BN_PID
		bn_perf_start $((LT + 40)) "$WORK/dsl.out" -c 10.100.2.1:5201 -bind 10.100.2.2 "${a[@]}"
		pd=$BN_PID
		bn_perf_wait "$pc" "$WORK/cable.out" || FAILED=1
		bn_perf_wait "$pd" "$WORK/dsl.out" || FAILED=1
		c=$(bn_result_field "$WORK/cable.out" mbps)
		d=$(bn_result_field "$WORK/dsl.out" mbps)
		echo "${c:--}" >>"$R/cable-$dir"
		echo "${d:--}" >>"$R/dsl-$dir"
		if [[ -n $c && -n $d ]]; then
			awk -v a="$c" -v b="$d" 'BEGIN { printf "%.3f\n", a + b }' >>"$R/sum-$dir"
		fi
		bn_log "  cable $c, dsl $d Mbit/s"
	done
}

# transfer MODE DIR SIZE REP: one transfer of SIZE MB; appends its secs to
# R/MODE-DIR-SIZE (nothing if it failed).
transfer() {
	local mode=$1 dir=$2 size=$3 rep=$4 a secs
	a=(-P 1 -bytes $((size * 1000000)) -t "${DEADLINE}s" -cc cubic)
	[[ $dir == down ]] && a+=(-reverse)
	case $mode in
	cable) a+=(-c 10.100.1.1:5201 -bind 10.100.1.2) ;;
	mptcp) a+=(-c 10.100.1.1:5202 -mptcp -bind 10.100.1.2) ;;
	bondtun) a+=(-c 10.77.0.1:5201) ;;
	esac
	sleep 1
	bn_perf_start $((DEADLINE + 40)) "$WORK/$mode.out" "${a[@]}"
	if bn_perf_wait "$BN_PID" "$WORK/$mode.out"; then
		secs=$(bn_result_field "$WORK/$mode.out" secs)
		echo "$secs" >>"$R/$mode-$dir-$size"
		bn_log "$mode: $dir ${size} MB rep $rep/$REPS: $secs s"
	else
		FAILED=1
	fi
}

# transfers MODE DIR: every size and repetition.
transfers() {
	local size rep
	for size in "${SIZES[@]}"; do
		for ((rep = 1; rep <= REPS; rep++)); do transfer "$1" "$2" "$size" "$rep"; done
	done
}

# med3 FILE: the median of FILE with 3 decimals, or "-".
med3() {
	awk '/^[0-9.]+$/' "$1" 2>/dev/null | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "-"; exit }
			printf "%.3f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# cell3 FILE: "median (min–max)" with 3 decimals, or "-".
cell3() {
	awk '/^[0-9.]+$/' "$1" 2>/dev/null | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "-"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			if (v[1] == v[NR]) printf "%.3f\n", m; else printf "%.3f (%.3f–%.3f)\n", m, v[1], v[NR] }'
}

{
	echo "# bondtun short transfers, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	if [[ ${BENCH_BUILD:-1} != 0 ]]; then
		echo "Binaries built now from the working tree at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
	else
		echo "Binaries from $BIN as given (BENCH_BUILD=0), bondtun built $(date -u -r "$BIN/bondtun" '+%Y-%m-%d %H:%M UTC'); HEAD now $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
	fi
	echo
	echo "Scenario H (cable 50 Mbit/s 10 ms + DSL 20 Mbit/s 30 ms one way, queues 1 BDP), sizes ${SIZES[*]} MB, SHORT_REPS=$REPS, links ${LREPS} × ${LT} s; $(nproc) CPUs; expected ~$((EST / 60)) min."
	echo
	echo "Load at start: \`$(uptime)\`"
	echo
	echo '```'
} | emit
START=$SECONDS

TB_DIR=$WORK/tb tb_setup "sh$$" 2>>"$WORK/testbed.log" || { tail -n 20 "$WORK/testbed.log" >&2; exit 1; }
ip netns exec "$TB_NS_S" "$BIN/btperf" server -l 0.0.0.0:5201 >"$WORK/btperf.log" 2>&1 &
PIDS+=($!)
ip netns exec "$TB_NS_S" "$BIN/btperf" server -mptcp -l 10.100.1.1:5202 >"$WORK/btperf-mptcp.log" 2>&1 &
PIDS+=($!)
sleep 0.3

ROWS=()
for dir in down up; do
	links "$dir"
	transfers cable "$dir"
	if bn_mptcp_on "$TB_NS_C" "$TB_NS_S"; then
		transfers mptcp "$dir"
	else
		echo "WARNING: $dir: MPTCP set-up failed" | emit
		FAILED=1
	fi
	bn_mptcp_off "$TB_NS_C" || { bn_log "MPTCP routing left in $TB_NS_C"; exit 1; }
	if bn_bondtun_start "$SCONF" "$CCONF" "$WORK/bt-$dir"; then
		transfers bondtun "$dir"
	else
		echo "WARNING: $dir: the tunnel did not come up" | emit
		FAILED=1
	fi
	bn_bondtun_stop "$BN_BT_C" "$TB_NS_C" "$CCONF" || FAILED=1
	bn_bondtun_stop "$BN_BT_S" "$TB_NS_S" "$SCONF" || FAILED=1
	sum=$(med3 "$R/sum-$dir")
	for size in "${SIZES[@]}"; do
		ideal=$(awk -v s="$size" -v r="$sum" 'BEGIN { if (r !~ /^[0-9.]+$/ || r + 0 == 0) print "-"; else printf "%.3f\n", s * 8 / r }')
		bt=$(med3 "$R/bondtun-$dir-$size")
		echo "SHORT scenario=H dir=$dir size_mb=$size secs=$bt cable_secs=$(med3 "$R/cable-$dir-$size") mptcp_secs=$(med3 "$R/mptcp-$dir-$size") ideal_secs=$ideal ratio_ideal=$(bn_ratio "$bt" "$ideal")" | emit
		ROWS+=("| $dir | $size | $(bn_cell "$R/cable-$dir") | $(bn_cell "$R/dsl-$dir") | $(bn_cell "$R/sum-$dir") | $ideal | $(cell3 "$R/bondtun-$dir-$size") | $(cell3 "$R/cable-$dir-$size") | $(cell3 "$R/mptcp-$dir-$size") | $(bn_ratio "$bt" "$ideal") | $(bn_ratio "$(med3 "$R/mptcp-$dir-$size")" "$ideal") |")
	done
done
tb_teardown
{
	echo '```'
	echo
	echo "Seconds per transfer, median (min–max) of $REPS; link goodput in Mbit/s (both links at once, one flow each, ${LT} s after ${LOMIT} s warm-up); ideal = size × 8 / sum."
	echo
	echo "| dir | MB | cable Mbit/s | DSL Mbit/s | sum Mbit/s | ideal s | bondtun s | cable alone s | MPTCP s | bondtun/ideal | MPTCP/ideal |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "Load at end: \`$(uptime)\` ($(((SECONDS - START) / 60)) min $(((SECONDS - START) % 60)) s)"
} | emit
DONE=1
bn_log "report written to $REPORT"
exit "$FAILED"
