#!/usr/bin/env bash
# bench-sweep.sh: bondtun's one-flow aggregation over a grid of link kinds.
#
#   scripts/bench-sweep.sh                  every combination of GRID below
#   SWEEP_ONLY=eq-fast-2ms,three-jittery scripts/bench-sweep.sh
#
# For each combination of the grid (two or three emulated links, see GRID: rate
# ratios 1:1 to 10:1, one-way delays 2–60 ms, jitter 0–10 ms uniform and
# normal, bottleneck queues 5–300 ms of the link's rate, loss 0–2 % on the fast
# or the slow link, asymmetric up/down rates) it builds the testbed of
# scripts/lib/testbed.sh once and, for each direction (down: the server sends,
# up: the client sends), repeats SWEEP_REPS times, one TCP flow (btperf -P 1,
# Cubic, or SWEEP_CC) of SWEEP_T seconds each, the first SWEEP_OMIT left out:
#   a) every link's own goodput, all links at the same time (one btperf per
#      link bound to its client address), their sum and the best single link;
#   b) kernel MPTCP over all links (one subflow per link);
#   c) bondtun through the tunnel (`bondtun up` on both sides, restarted for
#      every repetition; client configuration from configs/client.yaml, with a
#      third uplink "lte" appended for three links), with btperf -i 100ms: the
#      ramp is the time from the start to the first 100 ms interval whose rate
#      reaches 90 % of that repetition's links' sum ("-" if none does).
# A bondtun repetition below SWEEP_TRACE_BELOW × the sum or below the best
# single link gets the sending side's flight recorder (download: server, upload:
# client) dumped with `bondtun status --trace` into
# out/sweep-traces/NAME-DIR-REP.csv (a warning if that fails), and btperf's
# 100 ms intervals beside it in NAME-DIR-REP.perf.
#
# Output (stdout and out/sweep-DATE.md), per combination and direction:
#   SWEEP links=NAME dir=down|up min_ratio=… median_ratio=… best_link_ratio=… mptcp_ratio=… ramp_s=… [cc=CC]
# ratio = bondtun goodput / links' sum of the same repetition (min and median
# over repetitions); best_link_ratio = the worst repetition's bondtun goodput /
# the median over repetitions of the best single link; mptcp_ratio = median
# MPTCP / median sum; ramp_s = median ramp. Then
#   SWEEP worst min_ratio=… best_link_ratio=…
# (the minimum of each over all lines) and, in the report, a Markdown table of
# every number (median and min–max). Progress goes to stderr.
#
# Environment: SWEEP_T [8], SWEEP_REPS [3], SWEEP_OMIT [1], SWEEP_ONLY [all],
# SWEEP_CC [cubic] (every flow's congestion control, the links', MPTCP's and
# bondtun's inner one alike; other than cubic it tags the SWEEP lines cc=CC)
# (comma-separated combination names), SWEEP_TRACE_BELOW [0.9] (a fraction of
# the sum; 1 dumps every repetition short of it), BIN [./bin], BENCH_BUILD [1]
# (0: use the binaries in BIN as they are), TB_RTPRIO (see testbed.sh). Root only
# (prints SKIP and exits 0 otherwise). Ends only the processes it started and
# deletes only its namespaces on exit, also when interrupted. Exit status 1 if
# a measurement failed, 2 on bad arguments.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
cd "$(dirname "$0")/.."

# The grid. One combination per line: a name, then one link spec per link
# (cable on up0, dsl on up1, and optionally lte on up2), then "#" and a
# description for the report. A link spec is
#   DOWN[/UP]:DELAY:JITTER[n]:LOSS:QUEUE
# DOWN and UP in Mbit/s (UP defaults to DOWN; in linkemu "ab" = client→server
# is the upload, "ba" = server→client the download), DELAY and JITTER one-way
# in ms (JITTER ± uniform, or σ of a normal distribution with a trailing "n"),
# LOSS in percent (both directions), QUEUE the bottleneck buffer in ms of that
# direction's rate (bytes = rate × ms / 8, at least 3000).
GRID='
# name             cable             dsl               lte
h-1bdp             50:10:0:0:20      20:30:0:0:60                          # scenario H (cable 50/10 ms + DSL 20/30 ms), ~1-BDP queues
eq-fast-2ms        100:2:0:0:10      100:2:0:0:10                          # two equal fast links, 2 ms, 1:1
eq-far-60ms        20:60:0:0:120     20:60:0:0:120                         # two equal links, 60 ms one way
ratio-10to1        100:5:0:0:20      10:5:0:0:20                           # 10:1 rate ratio, same delay
delay-gap          50:2:0:0:20       50:60:0:0:120                         # equal rates, 2 ms beside 60 ms
shallow-5ms        50:10:0:0:5       20:30:0:0:5                           # H with 5 ms queues
bloat-300ms        50:10:0:0:300     20:30:0:0:300                         # H with 300 ms queues on both
wired-mobile       100:5:0:0:20      20:40:10:0:250                        # fast wired + slow mobile, ±10 ms uniform jitter, 250 ms buffer
wired-mobile-norm  50:8:0:0:30       15/5:35:8n:0:300                      # wired + asymmetric mobile 15/5, normal jitter σ 8 ms, 300 ms buffer
jitter-small       40:15:2:0:40      30:20:4n:0:60                         # 4:3, small jitter on both (2 ms uniform, σ 4 ms normal)
loss1-fast         50:10:0:1:40      20:30:0:0:60                          # H with 1 % loss on the fast link
loss2-slow         50:10:0:0:40      20:30:0:2:60                          # H with 2 % loss on the slow link
loss-both          50:10:0:0.5:40    20:30:0:0.5:60                        # H with 0.5 % loss on both
thin-up            50/5:10:0:0:100   20/1:30:0:0:300                       # thin upstreams: 50/5 beside 20/1 with a 300 ms buffer
asym-cable         100/10:10:0:0:40  20:30:0:0:60                          # asymmetric cable 100/10 beside symmetric DSL 20
three-jittery      50:10:0:0:40      20:30:0:0:60      30:40:10n:0:200     # H + LTE 30/40 ms with normal jitter σ 10 ms, 200 ms buffer
three-equal        30:10:0:0:30      30:10:0:0:30      30:10:0:0:30        # three equal links, 30 Mbit/s 10 ms
three-mixed        100:5:0:0:20      10:20:0:0:50      20:50:5:1:150       # 10:1:2, LTE with ±5 ms jitter and 1 % loss
'

if [[ $EUID -ne 0 ]]; then
	echo "SKIP: bench-sweep.sh needs root (network namespaces, TUN devices)"
	exit 0
fi
T=${SWEEP_T:-8}
REPS=${SWEEP_REPS:-3}
CC=${SWEEP_CC:-cubic}
CCTAG=
[[ $CC == cubic ]] || CCTAG=" cc=$CC"
OMIT=${SWEEP_OMIT:-1}
TRACE_BELOW=${SWEEP_TRACE_BELOW:-0.9}
BIN=${BIN:-./bin}
if ! [[ $T =~ ^[0-9]+$ && $REPS =~ ^[0-9]+$ && $OMIT =~ ^[0-9]+$ ]] || ((T <= OMIT || REPS < 1)); then
	echo "bench-sweep.sh: need integers SWEEP_T > SWEEP_OMIT >= 0 and SWEEP_REPS >= 1" >&2
	exit 2
fi
if ! [[ $CC =~ ^[a-z0-9_]+$ ]]; then
	echo "bench-sweep.sh: SWEEP_CC must be a congestion control's name (e.g. cubic, bbr), got '$CC'" >&2
	exit 2
fi
if ! [[ $TRACE_BELOW =~ ^[0-9]*\.?[0-9]+$ ]]; then
	echo "bench-sweep.sh: SWEEP_TRACE_BELOW must be a number (a fraction of the links' sum), got '$TRACE_BELOW'" >&2
	exit 2
fi

# Parse the grid into NAMES, SPECS (space-separated link specs) and DESCS.
NAMES=() SPECS=() DESCS=()
while IFS= read -r line; do
	desc=
	[[ $line == *'#'* ]] && desc=${line#*#} && line=${line%%#*}
	read -ra f <<<"$line"
	((${#f[@]})) || continue
	if ((${#f[@]} < 3 || ${#f[@]} > 4)); then
		echo "bench-sweep.sh: grid line '${f[*]}': want a name and 2 or 3 link specs" >&2
		exit 2
	fi
	for s in "${f[@]:1}"; do
		[[ $s =~ ^[0-9]+(/[0-9]+)?:[0-9]+:[0-9.]+n?:[0-9.]+:[0-9]+$ ]] ||
			{ echo "bench-sweep.sh: grid ${f[0]}: bad link spec $s" >&2; exit 2; }
	done
	NAMES+=("${f[0]}")
	SPECS+=("${f[*]:1}")
	DESCS+=("$(sed 's/^ *//; s/ *$//' <<<"$desc")")
done <<<"$GRID"

SEL=()
if [[ -n ${SWEEP_ONLY:-} ]]; then
	IFS=, read -ra want <<<"$SWEEP_ONLY"
	for w in "${want[@]}"; do
		found=
		for i in "${!NAMES[@]}"; do [[ ${NAMES[i]} == "$w" ]] && SEL+=("$i") && found=1; done
		[[ -n $found ]] || { echo "bench-sweep.sh: unknown combination $w (known: ${NAMES[*]})" >&2; exit 2; }
	done
else
	SEL=("${!NAMES[@]}")
fi
for t in ip ping timeout; do
	command -v "$t" >/dev/null || { echo "SKIP: $t missing (scripts/setup.sh installs it)"; exit 0; }
done

# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
# shellcheck source=lib/bench.sh
source scripts/lib/bench.sh

WORK=$(mktemp -d /tmp/bondtun-sweep.XXXXXX)
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
		printf '\nINCOMPLETE: bench-sweep.sh ended early (interrupted or failed).\n' | tee -a "$REPORT"
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
	[[ -x $BIN/$b ]] || { echo "bench-sweep.sh: no $BIN/$b (set BIN or BENCH_BUILD=1)" >&2; exit 1; }
done

mkdir -p out out/sweep-traces
REPORT=out/sweep-$(date -u +%Y%m%dT%H%M%SZ).md
: >"$REPORT"
FAILED=0
emit() { tee -a "$REPORT"; }

# One repetition: links, MPTCP and bondtun, each T plus ~1 s (measured: 3T + 2
# s with T = 4); per combination ~2 s of set-up and tear-down.
PER_COMBO=$((2 * REPS * (3 * T + 3) + 2))
EST=$((${#SEL[@]} * PER_COMBO))
bn_log "${#SEL[@]} combination(s) × 2 directions × $REPS rep(s) × 3 runs of ${T} s: expected ~$((EST / 60)) min $((EST % 60)) s"

# link_env VAR_PREFIX SPEC: export the testbed variables of one link (see GRID).
link_env() {
	local p=$1 down up delay jit loss q args="" rest
	IFS=: read -r rest delay jit loss q <<<"$2"
	down=${rest%%/*}
	up=$down
	[[ $rest == */* ]] && up=${rest#*/}
	if [[ $jit == *n ]]; then
		jit=${jit%n}
		args+=" -jitter-dist normal"
	fi
	# The unsuffixed flags set both directions (upload: "ab"); -…-ba overrides
	# the download.
	[[ $up != "$down" ]] && args+=" -rate-ba ${down}mbit"
	args+=" -queue-ba $(bn_queue_bytes "$down" "$q")"
	export "${p}_RATE=${up}mbit" "${p}_DELAY=${delay}ms" "${p}_JITTER=${jit}ms" \
		"${p}_LOSS=$loss" "${p}_QUEUE=$(bn_queue_bytes "$up" "$q")" "${p}_ARGS=${args# }"
}

# combo_env INDEX: the testbed variables of a combination; sets NL (links).
combo_env() {
	local specs
	read -ra specs <<<"${SPECS[$1]}"
	NL=${#specs[@]}
	unset LTE_RATE LTE_DELAY LTE_JITTER LTE_LOSS LTE_QUEUE LTE_ARGS
	link_env CABLE "${specs[0]}"
	link_env DSL "${specs[1]}"
	((NL == 3)) && link_env LTE "${specs[2]}"
	return 0
}

# perf_args DIR: btperf client flags common to every run.
perf_args() {
	local a=(-P 1 -t "${T}s" -omit "${OMIT}s" -cc "$CC")
	[[ $1 == down ]] && a+=(-reverse)
	echo "${a[@]}"
}

# val FILE: the goodput of a btperf output, or "-".
val() {
	local v
	v=$(bn_result_field "$1" mbps)
	echo "${v:--}"
}

# measure_links R DIR REP: every link at once; appends each link's goodput,
# the sum and the best single link (or "-") to R's files.
measure_links() {
	local R=$1 dir=$2 rep=$3 i pids=() ok=1 v vals=() sum best
	bn_log "links alone: $dir, rep $rep/$REPS"
	for ((i = 0; i < NL; i++)); do
		# shellcheck disable=SC2046 # perf_args is split on purpose
		bn_perf_start $((T + 40)) "$WORK/link$i.out" -c "10.100.$((i + 1)).1:5201" -bind "10.100.$((i + 1)).2" $(perf_args "$dir")
		pids+=("$BN_PID")
	done
	for ((i = 0; i < NL; i++)); do
		bn_perf_wait "${pids[i]}" "$WORK/link$i.out" || { ok=; FAILED=1; }
		v=$(val "$WORK/link$i.out")
		[[ $v == - ]] && ok=
		echo "$v" >>"$R/link$i-$dir"
		vals+=("$v")
	done
	sum=- best=-
	if [[ -n $ok ]]; then
		read -r sum best < <(printf '%s\n' "${vals[@]}" | awk '{ s += $1; if ($1 > m) m = $1 } END { printf "%.3f %.3f\n", s, m }')
	fi
	echo "$sum" >>"$R/sum-$dir"
	echo "$best" >>"$R/best-$dir"
	bn_log "  links: ${vals[*]} Mbit/s, sum $sum"
}

# measure_mptcp R DIR REP: one MPTCP run over all links.
measure_mptcp() {
	local R=$1 dir=$2 rep=$3 c0 c1 i b=()
	bn_log "mptcp: $dir, rep $rep/$REPS"
	if ! bn_mptcp_on_n "$TB_NS_C" "$TB_NS_S" "$NL"; then
		bn_log "WARNING: MPTCP set-up failed"
		FAILED=1
		echo - >>"$R/mptcp-$dir"
		bn_mptcp_off_n "$TB_NS_C" 3 || true
		return 0
	fi
	read -ra c0 <<<"$(bn_counters "$dir" "$NL")"
	# shellcheck disable=SC2046
	bn_perf_start $((T + 40)) "$WORK/mptcp.out" -c 10.100.1.1:5202 -mptcp -bind 10.100.1.2 $(perf_args "$dir")
	bn_perf_wait "$BN_PID" "$WORK/mptcp.out" || FAILED=1
	read -ra c1 <<<"$(bn_counters "$dir" "$NL")"
	for ((i = 0; i < NL; i++)); do b+=($((c1[i] - c0[i]))); done
	echo "${b[*]}" >>"$R/bytes-mptcp-$dir"
	val "$WORK/mptcp.out" >>"$R/mptcp-$dir"
	bn_log "  mptcp: $(tail -n 1 "$R/mptcp-$dir") Mbit/s, link shares $(bn_shares "${b[*]}") %"
	if ! bn_mptcp_off_n "$TB_NS_C" 3; then
		bn_log "MPTCP routing left in $TB_NS_C"
		return 1
	fi
}

# measure_bondtun R NAME DIR REP: one run through a freshly started tunnel.
measure_bondtun() {
	local R=$1 name=$2 dir=$3 rep=$4 c0 c1 i b=() bt sum best ramp ns conf trace
	bn_log "bondtun: $dir, rep $rep/$REPS"
	if ! bn_bondtun_start "$SCONF" "$CCONF" "$WORK/bt-$name-$dir-$rep"; then
		FAILED=1
		echo - >>"$R/bt-$dir"
		echo - >>"$R/ramp-$dir"
		echo - >>"$R/ratio-$dir"
		bn_bondtun_stop "$BN_BT_C" "$TB_NS_C" "$CCONF" || true
		bn_bondtun_stop "$BN_BT_S" "$TB_NS_S" "$SCONF" || true
		return 0
	fi
	read -ra c0 <<<"$(bn_counters "$dir" "$NL")"
	# shellcheck disable=SC2046
	bn_perf_start $((T + 40)) "$WORK/bt.out" -c 10.77.0.1:5201 -i 100ms $(perf_args "$dir")
	bn_perf_wait "$BN_PID" "$WORK/bt.out" || FAILED=1
	read -ra c1 <<<"$(bn_counters "$dir" "$NL")"
	for ((i = 0; i < NL; i++)); do b+=($((c1[i] - c0[i]))); done
	echo "${b[*]}" >>"$R/bytes-bt-$dir"
	bt=$(val "$WORK/bt.out")
	sum=$(tail -n 1 "$R/sum-$dir")
	best=$(tail -n 1 "$R/best-$dir")
	ramp=-
	if [[ $sum != - ]]; then
		ramp=$(awk -v target="$sum" -F'[= ]' '/^t=[0-9.]+ mbps=/ { if ($4 >= 0.9 * target) { print $2; found = 1; exit } }
			END { if (!found) print "-" }' "$WORK/bt.out")
	fi
	echo "$bt" >>"$R/bt-$dir"
	echo "$ramp" >>"$R/ramp-$dir"
	bn_ratio "$bt" "$sum" >>"$R/ratio-$dir"
	bn_log "  bondtun: $bt Mbit/s (sum $sum, best link $best), ramp $ramp s, link shares $(bn_shares "${b[*]}") %"
	# A short repetition: dump the sending side's flight recorder.
	if [[ $bt == - ]] || awk -v b="$bt" -v s="$sum" -v m="$best" -v f="$TRACE_BELOW" 'BEGIN { exit !((s != "-" && b < f * s) || (m != "-" && b < m)) }'; then
		if [[ $dir == down ]]; then ns=$TB_NS_S conf=$SCONF; else ns=$TB_NS_C conf=$CCONF; fi
		trace=out/sweep-traces/$name-$dir-$rep.csv
		if timeout -k 2 20 ip netns exec "$ns" "$BIN/bondtun" status -c "$conf" --trace "$trace" >"$WORK/trace.out" 2>&1; then
			bn_log "  below $TRACE_BELOW × sum or the best link: flight recorder in $trace"
			grep '^t=' "$WORK/bt.out" >"${trace%.csv}.perf" || true
			echo "$trace" >>"$R/traces"
		else
			bn_log "WARNING: flight recorder dump failed: $(tail -n 1 "$WORK/trace.out")"
			rm -f "$trace"
		fi
	fi
	bn_bondtun_stop "$BN_BT_C" "$TB_NS_C" "$CCONF" || FAILED=1
	bn_bondtun_stop "$BN_BT_S" "$TB_NS_S" "$SCONF" || FAILED=1
}

# median_ramp FILE: the median of the ramp times, "-" (never) counting as
# infinitely long; "-" if the median is such.
median_ramp() {
	awk '{ print ($1 == "-" ? "inf" : $1) }' "$1" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "-"; exit }
			if (NR % 2) m = v[(NR + 1) / 2]; else if (v[NR / 2] == "inf" || v[NR / 2 + 1] == "inf") m = "inf"; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
			if (m == "inf") print "-"; else printf "%.1f\n", m }'
}

# cell2 FILE: "median (min–max)" with 2 decimals, or "-".
cell2() {
	awk '/^[0-9.]+$/' "$1" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "-"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			if (v[1] == v[NR]) printf "%.2f\n", m; else printf "%.2f (%.2f–%.2f)\n", m, v[1], v[NR] }'
}

# share_cell R MODE DIR: the links' shares of MODE's bytes over all repetitions.
share_cell() {
	[[ -s $1/bytes-$2-$3 ]] || { echo -; return; }
	bn_shares "$(awk '{ for (i = 1; i <= NF; i++) s[i] += $i; n = NF } END { for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? " " : ""), s[i] }' "$1/bytes-$2-$3")"
}

# summarize NAME R DIR: the SWEEP line (stdout and report) and a table row (ROWS).
summarize() {
	local name=$1 R=$2 dir=$3 minr medr blr mpr ramp bestmed btmin i cells=()
	minr=$(bn_min <"$R/ratio-$dir")
	medr=$(bn_median <"$R/ratio-$dir")
	btmin=$(bn_min <"$R/bt-$dir")
	bestmed=$(bn_median <"$R/best-$dir")
	blr=$(bn_ratio "$btmin" "$bestmed")
	mpr=$(bn_ratio "$(bn_median <"$R/mptcp-$dir")" "$(bn_median <"$R/sum-$dir")")
	ramp=$(median_ramp "$R/ramp-$dir")
	echo "SWEEP links=$name dir=$dir min_ratio=$minr median_ratio=$medr best_link_ratio=$blr mptcp_ratio=$mpr ramp_s=$ramp$CCTAG" | emit
	echo "$minr $blr" >>"$WORK/worst"
	for ((i = 0; i < 3; i++)); do
		if ((i < NL)); then cells+=("$(bn_cell "$R/link$i-$dir")"); else cells+=(-); fi
	done
	ROWS+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' \
		"$name" "$dir" "${cells[0]}" "${cells[1]}" "${cells[2]}" "$(bn_cell "$R/sum-$dir")" \
		"$(bn_cell "$R/best-$dir")" "$(bn_cell "$R/mptcp-$dir")" "$(bn_cell "$R/bt-$dir")" \
		"$(cell2 "$R/ratio-$dir")" "$blr" "$mpr" "$ramp ($(paste -sd, "$R/ramp-$dir"))" \
		"$(share_cell "$R" bt "$dir")" "$(share_cell "$R" mptcp "$dir")" \
		"$(grep -c -- "-$dir-[0-9]*\.csv\$" "$R/traces" 2>/dev/null || true)")")
}

# run_combo INDEX: build the testbed, measure both directions, tear down.
run_combo() {
	local idx=$1 name=${NAMES[$1]} R=$WORK/res-${NAMES[$1]} dir rep pid
	mkdir -p "$R"
	: >"$R/traces"
	combo_env "$idx"
	bn_log "== $name ($NL links: ${SPECS[idx]}): ${DESCS[idx]}"
	bn_log "   cable: $CABLE_RATE $CABLE_DELAY jitter $CABLE_JITTER loss $CABLE_LOSS queue $CABLE_QUEUE $CABLE_ARGS"
	bn_log "   dsl:   $DSL_RATE $DSL_DELAY jitter $DSL_JITTER loss $DSL_LOSS queue $DSL_QUEUE $DSL_ARGS"
	((NL == 3)) && bn_log "   lte:   $LTE_RATE $LTE_DELAY jitter $LTE_JITTER loss $LTE_LOSS queue $LTE_QUEUE $LTE_ARGS"
	SCONF=$WORK/server-$name.yaml
	CCONF=$WORK/client-$name.yaml
	cp configs/server.yaml "$SCONF"
	bn_client_config configs/client.yaml "$CCONF" "$NL" || { bn_log "cannot write the client configuration"; return 1; }
	TB_DIR=$WORK/tb-$name tb_setup "sw$$-$idx" 2>>"$WORK/testbed.log" || {
		tail -n 20 "$WORK/testbed.log" >&2
		return 1
	}
	ip netns exec "$TB_NS_S" "$BIN/btperf" server -l 0.0.0.0:5201 >"$WORK/btperf-$name.log" 2>&1 &
	PIDS+=($!)
	ip netns exec "$TB_NS_S" "$BIN/btperf" server -mptcp -l 10.100.1.1:5202 >"$WORK/btperf-mptcp-$name.log" 2>&1 &
	PIDS+=($!)
	sleep 0.3
	for dir in down up; do
		for ((rep = 1; rep <= REPS; rep++)); do
			measure_links "$R" $dir $rep
			measure_mptcp "$R" $dir $rep || return 1
			measure_bondtun "$R" "$name" $dir $rep
		done
		summarize "$name" "$R" $dir
	done
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	PIDS=()
	tb_teardown
}

{
	echo "# bondtun one-flow sweep, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	if [[ ${BENCH_BUILD:-1} != 0 ]]; then
		echo "Binaries built now from the working tree at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
	else
		echo "Binaries from $BIN as given (BENCH_BUILD=0), bondtun built $(date -u -r "$BIN/bondtun" '+%Y-%m-%d %H:%M UTC'); HEAD now $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
	fi
	echo
	echo "SWEEP_T=$T SWEEP_OMIT=$OMIT SWEEP_REPS=$REPS, one TCP flow ($CC), $(nproc) CPUs; expected duration ~$((EST / 60)) min."
	echo
	echo "Load at start: \`$(uptime)\`"
	echo
	echo "Link spec DOWN[/UP]:DELAY:JITTER[n]:LOSS:QUEUE — Mbit/s, one-way ms, ms (± uniform, n = normal σ), % both directions, queue in ms of the direction's rate."
	echo
	echo "| combination | cable (up0) | dsl (up1) | lte (up2) | description |"
	echo "|---|---|---|---|---|"
	for i in "${SEL[@]}"; do
		read -ra sp <<<"${SPECS[i]}"
		echo "| ${NAMES[i]} | ${sp[0]} | ${sp[1]} | ${sp[2]:--} | ${DESCS[i]} |"
	done
	echo
	echo '```'
} | emit
START=$SECONDS
ROWS=()
: >"$WORK/worst"
for i in "${SEL[@]}"; do
	if ! run_combo "$i"; then
		echo "WARNING: combination ${NAMES[i]} failed" | emit
		FAILED=1
		# What a failed combination left running.
		for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
		for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
		PIDS=()
		tb_teardown
	fi
done
awk -v tag="$CCTAG" '
	function upd(v, k) { if (v ~ /^[0-9.]+$/ && (!(k in m) || v + 0 < m[k])) m[k] = v + 0 }
	{ upd($1, "r"); upd($2, "b") }
	END {
		printf "SWEEP worst min_ratio=%s best_link_ratio=%s%s\n", ("r" in m ? sprintf("%.2f", m["r"]) : "-"), ("b" in m ? sprintf("%.2f", m["b"]) : "-"), tag
	}' "$WORK/worst" | emit
{
	echo '```'
	echo
	echo "Mbit/s, median (min–max) over $REPS repetition(s) of ${T} s after ${OMIT} s warm-up. Links measured at the same time, one flow each; bondtun/sum per repetition; best-link ratio = worst bondtun / median best link; MPTCP/sum = medians; ramp = time to the first 100 ms interval at ≥ 90 % of the repetition's sum (median, and every repetition); shares = each link's part of the bytes (cable/dsl[/lte]) over all repetitions; traces = repetitions whose flight recorder is in out/sweep-traces/. On clean links bondtun/sum tops out at 0.96: every inner packet carries 60 bytes of tunnel overhead, so a 1500-byte link packet holds 1388 bytes of the inner flow's data against 1448 for a flow straight over the link (docs/DECISIONS.md)."
	echo
	echo "| combination | dir | cable | dsl | lte | sum | best link | MPTCP | bondtun | bondtun/sum | best-link ratio | MPTCP/sum | ramp s | shares bondtun % | shares MPTCP % | traces |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	((${#ROWS[@]})) && printf '%s\n' "${ROWS[@]}"
	echo
	echo "Load at end: \`$(uptime)\` ($(((SECONDS - START) / 60)) min $(((SECONDS - START) % 60)) s)"
} | emit
DONE=1
bn_log "report written to $REPORT"
exit "$FAILED"
