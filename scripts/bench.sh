#!/usr/bin/env bash
# bench.sh: bondtun's aggregation benchmark on the emulated testbed.
#
#   scripts/bench.sh [SCENARIO...]      SCENARIO: H, E, L or F (default: H E L)
#
#   H  cable 50 Mbit/s 10 ms + DSL 20 Mbit/s 30 ms (one-way delays, both directions)
#   E  2 × 100 Mbit/s 5 ms
#   L  H with 1 % random loss on DSL (both directions)
#   F  H with 1 % random loss on the cable, the fast link (both directions)
#
# Queues are the emulator's default, one BDP of the link's base RTT. For each
# scenario it builds the topology of scripts/lib/testbed.sh once and measures,
# downloads (server sends) and uploads, with 1 and 8 TCP flows, Cubic (BENCH_CC), each
# run BENCH_T seconds of which the first BENCH_OMIT are a warm-up left out,
# repeated BENCH_REPS times (median, min, max):
#   1. each link's own TCP goodput, both links at the same time (bondtun not
#      running), and their sum;
#   2. kernel MPTCP over the two links (one subflow per link, kernel default
#      scheduler), checking from the interface counters that both carry data;
#   3. bondtun (`bondtun up` in both namespaces, configs/{server,client}.yaml),
#      with the share of tunnel bytes per link, the ping RTT through the tunnel
#      idle (median of 20) and under the 8-flow download (p95 of ping -i 0.05),
#      and the cable link's own RTT as the base.
# Progress goes to stderr; a Markdown table per scenario and the lines
#   BENCH scenario=H dir=down flows=1 bondtun=… sum=… mptcp=… ratio=… ratio_mptcp=… [cc=…]
#   BENCH scenario=H rtt_idle_ms=… rtt_load_p95_ms=… rtt_base_ms=…
# go to stdout and to out/bench-DATE.md. Rates in Mbit/s; ratio = bondtun/sum
# of the same flow count (scenarios L and F: against the 8-flow sum), ratio_mptcp =
# bondtun/mptcp. See docs/BENCHMARKS.md.
#
# Environment: BENCH_T [10], BENCH_REPS [3], BENCH_OMIT [2], BIN [./bin], BENCH_CC [cubic]
# (the flows' congestion control, for every measurement; other than cubic it ends each
# BENCH line as cc=…),
# BENCH_BUILD [1] (0: use the binaries in BIN as they are), TB_RTPRIO (see
# testbed.sh). Root only (prints SKIP and exits 0 otherwise). Removes all it
# made on exit, also when interrupted. Exit status 1 if a measurement failed.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
	echo "SKIP: bench.sh needs root (network namespaces, TUN devices)"
	exit 0
fi
T=${BENCH_T:-10}
REPS=${BENCH_REPS:-3}
OMIT=${BENCH_OMIT:-2}
CC=${BENCH_CC:-cubic}
CCTAG=
[[ $CC == cubic ]] || CCTAG=" cc=$CC"
BIN=${BIN:-./bin}
if ! [[ $T =~ ^[0-9]+$ && $REPS =~ ^[0-9]+$ && $OMIT =~ ^[0-9]+$ ]] || ((T <= OMIT || REPS < 1)); then
	echo "bench.sh: need integers BENCH_T > BENCH_OMIT >= 0 and BENCH_REPS >= 1" >&2
	exit 2
fi
SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=(H E L)
for s in "${SCENARIOS[@]}"; do
	[[ $s =~ ^[HELF]$ ]] || { echo "bench.sh: unknown scenario $s (H, E, L or F)" >&2; exit 2; }
done
for t in ip ping timeout; do
	command -v "$t" >/dev/null || { echo "SKIP: $t missing (scripts/setup.sh installs it)"; exit 0; }
done

# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
# shellcheck source=lib/bench.sh
source scripts/lib/bench.sh

WORK=$(mktemp -d /tmp/bondtun-bench.XXXXXX)
PIDS=() # every background process this script started and has not reaped
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	set +e
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	tb_teardown
	rm -rf "$WORK"
	if [[ -n ${REPORT:-} && -z ${DONE:-} ]]; then
		printf '\nINCOMPLETE: bench.sh ended early (interrupted or failed).\n' | tee -a "$REPORT"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# untrack PID: drop a reaped process from PIDS.
untrack() {
	local keep=() p
	for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

if [[ ${BENCH_BUILD:-1} != 0 ]]; then
	bn_log "building into $BIN"
	# shellcheck source=lib/version.sh
	source scripts/lib/version.sh
	bt_build -o "$BIN/" ./cmd/... || exit 1
fi
export LINKEMU=$BIN/linkemu
for b in bondtun btperf linkemu; do
	[[ -x $BIN/$b ]] || { echo "bench.sh: no $BIN/$b (set BIN or BENCH_BUILD=1)" >&2; exit 1; }
done

mkdir -p out
REPORT=out/bench-$(date -u +%Y%m%dT%H%M%SZ).md
: >"$REPORT"
FAILED=0
# emit: copy stdin to stdout and the report file.
emit() { tee -a "$REPORT"; }

# perf_start OUTFILE ARGS...: start `btperf client ARGS` in the client
# namespace in the background (bounded by T + 40 s); sets PERF_PID.
perf_start() {
	local f=$1
	shift
	timeout -k 5 $((T + 40)) ip netns exec "$TB_NS_C" "$BIN/btperf" client "$@" >"$f" 2>&1 &
	PERF_PID=$!
	PIDS+=("$PERF_PID")
}

# perf_wait PID OUTFILE RESULTFILE: wait for a btperf client, append its
# goodput to RESULTFILE (nothing on failure, which is logged and counted).
perf_wait() {
	local rc=0 mbps
	wait "$1" || rc=$?
	untrack "$1"
	mbps=$(sed -n 's/^RESULT mbps=\([0-9.]*\).*/\1/p' "$2" | tail -n 1)
	if [[ $rc != 0 || -z $mbps ]]; then
		bn_log "WARNING: btperf failed (exit $rc): $(tail -n 2 "$2" | tr '\n' ' ')"
		FAILED=1
		return 0
	fi
	echo "$mbps" >>"$3"
}

# perf_args DIR FLOWS: the btperf client flags common to every run.
perf_args() {
	local a=(-P "$2" -t "${T}s" -omit "${OMIT}s" -cc "$CC")
	[[ $1 == down ]] && a+=(-reverse)
	echo "${a[@]}"
}

# counters DIR: the client's up0 and up1 byte counters in the direction the
# data flows (rx for downloads, tx for uploads).
counters() {
	local k=rx
	[[ $1 == up ]] && k=tx
	echo "$(bn_bytes "$TB_NS_C" up0 $k) $(bn_bytes "$TB_NS_C" up1 $k)"
}

# measure_links R: both links at once, each with its own btperf client.
measure_links() {
	local R=$1 dir flows rep pc pd args
	for dir in down up; do
		for flows in 1 8; do
			for ((rep = 1; rep <= REPS; rep++)); do
				bn_log "links alone: $dir, $flows flow(s) per link, rep $rep/$REPS"
				args=$(perf_args $dir $flows)
				# shellcheck disable=SC2086
				perf_start "$WORK/cable.out" -c 10.100.1.1:5201 -bind 10.100.1.2 $args
				pc=$PERF_PID
				# shellcheck disable=SC2086
				perf_start "$WORK/dsl.out" -c 10.100.2.1:5201 -bind 10.100.2.2 $args
				pd=$PERF_PID
				: >"$WORK/one.cable" && : >"$WORK/one.dsl"
				perf_wait "$pc" "$WORK/cable.out" "$WORK/one.cable"
				perf_wait "$pd" "$WORK/dsl.out" "$WORK/one.dsl"
				cat "$WORK/one.cable" >>"$R/cable-$dir-$flows"
				cat "$WORK/one.dsl" >>"$R/dsl-$dir-$flows"
				if [[ -s $WORK/one.cable && -s $WORK/one.dsl ]]; then
					awk '{ s += $1 } END { printf "%.3f\n", s }' "$WORK/one.cable" "$WORK/one.dsl" >>"$R/sum-$dir-$flows"
				fi
			done
		done
	done
}

# measure_one MODE R DIR FLOWS REP DST: one run of MODE (mptcp|bondtun) to
# DST, adding its goodput and the per-link byte counts to R's files.
measure_one() {
	local mode=$1 R=$2 dir=$3 flows=$4 rep=$5 dst=$6 args c0 c1 pid ping_pid=
	bn_log "$mode: $dir, $flows flow(s), rep $rep/$REPS"
	args=$(perf_args "$dir" "$flows")
	[[ $mode == mptcp ]] && args+=" -mptcp -bind 10.100.1.2"
	read -ra c0 <<<"$(counters "$dir")"
	# shellcheck disable=SC2086
	perf_start "$WORK/$mode.out" -c "$dst" $args
	pid=$PERF_PID
	if [[ $mode == bondtun && $dir == down && $flows == 8 ]]; then
		timeout -k 2 $((T + 10)) ip netns exec "$TB_NS_C" ping -n -i 0.05 -w "$T" 10.77.0.1 >"$WORK/ping-load-$rep.out" 2>&1 &
		ping_pid=$!
		PIDS+=("$ping_pid")
	fi
	perf_wait "$pid" "$WORK/$mode.out" "$R/$mode-$dir-$flows"
	if [[ -n $ping_pid ]]; then
		wait "$ping_pid" || true
		untrack "$ping_pid"
		# Only the replies after the warm-up (20 pings a second).
		awk -v skip=$((OMIT * 20)) -F'icmp_seq=' 'NF > 1 { split($2, a, " "); if (a[1] + 0 > skip) print }' \
			"$WORK/ping-load-$rep.out" | sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' >>"$R/rtt-load"
	fi
	read -ra c1 <<<"$(counters "$dir")"
	echo "$((c1[0] - c0[0])) $((c1[1] - c0[1]))" >>"$R/bytes-$mode-$dir-$flows"
}

# measure_mode MODE R DST: every direction, flow count and repetition.
measure_mode() {
	local dir flows rep
	for dir in down up; do
		for flows in 1 8; do
			for ((rep = 1; rep <= REPS; rep++)); do
				measure_one "$1" "$2" $dir $flows $rep "$3"
			done
		done
	done
}

# share R MODE DIR FLOWS: the cable's percentage of MODE's bytes over both links.
share() {
	awk '{ a += $1; b += $2 } END { print a + 0, b + 0 }' "$1/bytes-$2-$3-$4" 2>/dev/null | {
		read -r a b
		bn_share "${a:-0}" "${b:-0}"
	}
}

# check_mptcp R: warn if one link carried (almost) none of MPTCP's bytes.
check_mptcp() {
	local f a b
	for f in "$1"/bytes-mptcp-*; do
		read -r a b < <(awk '{ a += $1; b += $2 } END { print a + 0, b + 0 }' "$f")
		if ((a + b == 0 || a * 100 < (a + b) || b * 100 < (a + b))); then
			echo "WARNING: MPTCP ${f##*/bytes-mptcp-}: cable $a bytes, dsl $b bytes — not both subflows carried data" | emit
		fi
	done
}

# start_bondtun: server then client, wait up to 15 s for ping through the tunnel.
start_bondtun() {
	# `bondtun up` refuses a private key that group or others can read (docs/SECURITY.md).
	chmod 600 configs/server.yaml configs/client.yaml
	ip netns exec "$TB_NS_S" "$BIN/bondtun" up -c configs/server.yaml 2>"$WORK/server.log" &
	BT_S=$!
	PIDS+=("$BT_S")
	sleep 0.3
	ip netns exec "$TB_NS_C" "$BIN/bondtun" up -c configs/client.yaml 2>"$WORK/client.log" &
	BT_C=$!
	PIDS+=("$BT_C")
	local end=$((SECONDS + 15))
	while ((SECONDS < end)); do
		ip netns exec "$TB_NS_C" ping -c1 -W1 10.77.0.1 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	bn_log "the tunnel did not come up; logs:"
	tail -n 20 "$WORK/server.log" "$WORK/client.log" >&2
	return 1
}

# stop_one PID NS CONFIG: SIGTERM, up to 5 s to exit, then SIGKILL and `bondtun down`.
stop_one() {
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
		timeout 10 ip netns exec "$2" "$BIN/bondtun" down -c "$3" >/dev/null 2>&1 || true
		FAILED=1
	else
		wait "$pid" 2>/dev/null || true
	fi
	untrack "$pid"
}

# load1: the 1-minute load average.
load1() { cut -d' ' -f1 /proc/loadavg; }

# scenario_env NAME: the testbed's link variables for a scenario.
scenario_env() {
	local cr=50mbit cd=10ms dr=20mbit dd=30ms dl=0 cl=0
	case $1 in
	E) cr=100mbit cd=5ms dr=100mbit dd=5ms ;;
	L) dl=1 ;;
	F) cl=1 ;;
	esac
	export CABLE_RATE=$cr CABLE_DELAY=$cd CABLE_JITTER=0s CABLE_LOSS=$cl CABLE_QUEUE=auto
	export DSL_RATE=$dr DSL_DELAY=$dd DSL_JITTER=0s DSL_LOSS=$dl DSL_QUEUE=auto
	SCEN_DESC="cable $cr $cd + DSL $dr $dd"
	[[ $dl != 0 ]] && SCEN_DESC+=" with $dl % loss on DSL"
	[[ $cl != 0 ]] && SCEN_DESC+=" with $cl % loss on the cable"
	SCEN_DESC+=", queues 1 BDP"
}

# report NAME R: the scenario's Markdown table and BENCH lines.
report() {
	local n=$1 R=$2 dir flows sumref bt sum mp lines=()
	{
		echo
		echo "### Scenario $n: $SCEN_DESC"
		echo
		echo "Load average (1 min) at the scenario's start and end: $LOAD_START, $(load1)."
		echo
		echo "Mbit/s, median (min–max) of $REPS × ${T} s runs after ${OMIT} s warm-up; links measured at the same time; share = cable's part of the bytes on the links."
		[[ $n == [LF] ]] && echo "In $n, bondtun/sum is against the 8-flow sum of the same direction (one TCP flow cannot use a lossy link well)."
		echo
		echo "| dir | flows | cable | DSL | sum | MPTCP | bondtun | bondtun/sum | bondtun/MPTCP | cable share bondtun | cable share MPTCP |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		for dir in down up; do
			for flows in 1 8; do
				sumref=$flows
				[[ $n == [LF] ]] && sumref=8
				bt=$(bn_med "$R/bondtun-$dir-$flows")
				sum=$(bn_med "$R/sum-$dir-$sumref")
				mp=$(bn_med "$R/mptcp-$dir-$flows")
				lines+=("BENCH scenario=$n dir=$dir flows=$flows bondtun=$bt sum=$sum mptcp=$mp ratio=$(bn_ratio "$bt" "$sum") ratio_mptcp=$(bn_ratio "$bt" "$mp")$CCTAG")
				printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s %% | %s %% |\n' "$dir" "$flows" \
					"$(bn_cell "$R/cable-$dir-$flows")" "$(bn_cell "$R/dsl-$dir-$flows")" \
					"$(bn_cell "$R/sum-$dir-$flows")" "$(bn_cell "$R/mptcp-$dir-$flows")" \
					"$(bn_cell "$R/bondtun-$dir-$flows")" "$(bn_ratio "$bt" "$sum")" "$(bn_ratio "$bt" "$mp")" \
					"$(share "$R" bondtun $dir $flows)" "$(share "$R" mptcp $dir $flows)"
			done
		done
		echo
		echo "| RTT (ms) | base: cable link, median | tunnel idle, median | tunnel under 8-flow download, p95 |"
		echo "|---|---:|---:|---:|"
		echo "| $n | $RTT_BASE | $RTT_IDLE | $RTT_LOAD |"
		echo
		echo '```'
		printf '%s\n' "${lines[@]}"
		echo "BENCH scenario=$n rtt_idle_ms=$RTT_IDLE rtt_load_p95_ms=$RTT_LOAD rtt_base_ms=$RTT_BASE"
		echo '```'
	} | emit
}

# run_scenario NAME: build the testbed, measure, report, tear down.
run_scenario() {
	local n=$1 R=$WORK/res-$1 pid
	mkdir -p "$R"
	scenario_env "$n"
	LOAD_START=$(load1)
	bn_log "== scenario $n: $SCEN_DESC"
	TB_DIR=$WORK/tb-$n tb_setup "b$$${n,,}" 2>>"$WORK/testbed.log" || {
		tail -n 20 "$WORK/testbed.log" >&2
		return 1
	}
	ip netns exec "$TB_NS_S" "$BIN/btperf" server -l 0.0.0.0:5201 >"$WORK/btperf-$n.log" 2>&1 &
	PIDS+=($!)
	ip netns exec "$TB_NS_S" "$BIN/btperf" server -mptcp -l 10.100.1.1:5202 >"$WORK/btperf-mptcp-$n.log" 2>&1 &
	PIDS+=($!)
	sleep 0.3

	RTT_BASE=$(bn_ping_rtts "$TB_NS_C" -c 20 -i 0.1 10.100.1.1 | bn_median)
	bn_log "cable RTT (median of 20 pings): $RTT_BASE ms"
	measure_links "$R"

	if bn_mptcp_on "$TB_NS_C" "$TB_NS_S"; then
		measure_mode mptcp "$R" 10.100.1.1:5202
		check_mptcp "$R"
	else
		echo "WARNING: scenario $n: MPTCP set-up failed" | emit
		FAILED=1
	fi
	bn_mptcp_off "$TB_NS_C" || { bn_log "MPTCP routing left in $TB_NS_C"; return 1; }

	RTT_IDLE=- RTT_LOAD=-
	if start_bondtun; then
		RTT_IDLE=$(bn_ping_rtts "$TB_NS_C" -c 20 -i 0.1 10.77.0.1 | bn_median)
		bn_log "tunnel RTT idle (median of 20 pings): $RTT_IDLE ms"
		measure_mode bondtun "$R" 10.77.0.1:5201
		RTT_LOAD=$(bn_p95 <"$R/rtt-load")
	else
		FAILED=1
	fi
	stop_one "$BT_C" "$TB_NS_C" configs/client.yaml
	stop_one "$BT_S" "$TB_NS_S" configs/server.yaml
	report "$n" "$R"

	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	PIDS=()
	tb_teardown
}

{
	echo "# bondtun aggregation benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	if [[ ${BENCH_BUILD:-1} != 0 ]]; then
		echo "Binaries built now from the working tree at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
	else
		echo "Binaries from $BIN as given (BENCH_BUILD=0), bondtun built $(date -u -r "$BIN/bondtun" '+%Y-%m-%d %H:%M UTC'); HEAD now $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
	fi
	echo
	echo "Scenarios ${SCENARIOS[*]}, BENCH_T=$T BENCH_REPS=$REPS BENCH_OMIT=$OMIT, $(nproc) CPUs."
	echo
	echo "Load at start: \`$(uptime)\`"
} | emit
START=$SECONDS
for s in "${SCENARIOS[@]}"; do
	run_scenario "$s" || { echo "WARNING: scenario $s failed" | emit; FAILED=1; }
done
{
	echo
	echo "Load at end: \`$(uptime)\` ($(((SECONDS - START) / 60)) min $(((SECONDS - START) % 60)) s)"
} | emit
DONE=1
bn_log "report written to $REPORT"
exit "$FAILED"
