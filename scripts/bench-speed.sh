#!/usr/bin/env bash
# bench-speed.sh: single-path speed of bondtun against raw TCP and wireguard-go.
#
#   client namespace  ==== one veth pair (no emulator, no shaping) ====  server namespace
#   raw TCP/UDP over the veth (the ceiling), wireguard-go (built from the
#   wireguard module version in go.mod) and bondtun with one uplink, all
#   three up at the same time, each measured in turn.
#
# Loads, all in the upload direction (client namespace sends, server receives):
#   tcp1    btperf client -P 1 -t T -omit OMIT
#   tcp4    btperf client -P 4 -t T -omit OMIT
#   udp200  btperf udp-client -size 200 -t T (offered rate unlimited; the
#           delivered packets per second count)
# Each rep runs every load on every system (systems in a rotated order per
# rep); the table shows medians over reps. CPU is utime+stime of the tunnel
# processes of both ends (from /proc/PID/stat) over the steady part of each
# run [OMIT, T-0.5 s], as % of one core; mbps_per_cpu = mbps/(cpu_pct/100).
# ratio_vs_wg is the median over reps of bondtun/wireguard measured in the
# same rep.
#
# Output: progress on stderr; on stdout a markdown report with the table and
# lines
#   SPEED offload tun_uso=yes|no udp_gso=yes|no udp_gro=yes|no
#   SPEED system=raw|wireguard|bondtun flows=1|4|udp200 mbps=... cpu_pct=... mbps_per_cpu=... [pps=... loss=... pps_per_cpu=...]
#   SPEED ratio_vs_wg=... flows=1|4|udp200 bondtun_mbps=... wireguard_mbps=... per_cpu_ratio_vs_wg=...
# and a copy in out/speed-DATE.md. Prints "SPEED SKIP ..." and exits 0 when
# not root.
#
# Environment: SPEED_REPS [3], SPEED_T [10] (seconds per run, >= 3),
# BIN (directory with prebuilt bondtun and btperf; default: build them from
# the working tree), SPEED_REF (a git ref: build bondtun and btperf as
# committed there instead, via git archive).
# Run time about REPS*9*(T+1) s. Removes everything it made on exit, also
# when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${SPEED_REPS:-3}
T=${SPEED_T:-10}
if ! [[ $REPS =~ ^[1-9][0-9]?$ && $T =~ ^[0-9]+$ ]] || ((T < 3 || T > 120)); then
	echo "bench-speed.sh: SPEED_REPS must be 1..99 and SPEED_T 3..120" >&2
	exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "SPEED SKIP reason=not-root (needs network namespaces and TUN devices)"
	exit 0
fi
OMIT=2
((T < 6)) && OMIT=1
WIN=$(awk -v t="$T" -v o="$OMIT" 'BEGIN { print t - o - 0.5 }')
SYSTEMS=(raw wireguard bondtun)
LOADS=(tcp1 tcp4 udp200)

# shellcheck source-path=SCRIPTDIR/..
source scripts/lib/speed.sh
WORK=$(mktemp -d /tmp/bondtun-speed.XXXXXX)
SP_SFX=$$
# shellcheck disable=SC2034 # read by scripts/lib/speed.sh
SP_WORK=$WORK
SP_BIN=$WORK/bin
RUN_PID= # the btperf client running now, if any
cleanup() {
	set +e
	if [[ -n $RUN_PID ]]; then
		kill -TERM "$RUN_PID" 2>/dev/null # timeout(1) passes it on to btperf
		wait "$RUN_PID" 2>/dev/null
	fi
	sp_teardown
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
	echo "bench-speed.sh: $*" >&2
	for f in "$WORK"/*.log; do
		[[ -s $f ]] || continue
		echo "--- $f" >&2
		tail -n 20 "$f" >&2
	done
	exit 1
}

sp_log "building wireguard-go, wgkey${BIN:+ (bondtun and btperf from $BIN)}"
mkdir -p "$SP_BIN" "$WORK/res"
# shellcheck source=lib/version.sh
source scripts/lib/version.sh
go build -o "$SP_BIN/wireguard-go" golang.zx2c4.com/wireguard || fail "cannot build wireguard-go"
go build -o "$SP_BIN/wgkey" ./scripts/lib/wgkey || fail "cannot build wgkey"
if [[ -n ${SPEED_REF:-} ]]; then
	# bondtun as committed at SPEED_REF (read-only: git archive), e.g. to
	# compare a change against HEAD in two runs.
	mkdir -p "$WORK/src"
	git archive "$SPEED_REF" | tar -x -C "$WORK/src" || fail "cannot export $SPEED_REF"
	(v=$(bt_version "$SPEED_REF") && cd "$WORK/src" && BT_VERSION=$v bt_build -o "$SP_BIN/" ./cmd/bondtun ./cmd/btperf) || fail "cannot build $SPEED_REF"
elif [[ -n ${BIN:-} ]]; then
	for b in bondtun btperf; do ln -s "$(realpath "$BIN/$b")" "$SP_BIN/$b" || fail "no $BIN/$b"; done
else
	bt_build -o "$SP_BIN/" ./cmd/bondtun ./cmd/btperf || fail "cannot build bondtun/btperf"
fi
BT_SRC="working tree at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
[[ -n ${SPEED_REF:-} ]] && BT_SRC="$SPEED_REF ($(git rev-parse --short "$SPEED_REF"))"
[[ -n ${BIN:-} && -z ${SPEED_REF:-} ]] && BT_SRC="binaries from $BIN"
WG_VERSION=$(go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)
CLK_TCK=$(getconf CLK_TCK)
UPTIME_START=$(uptime)
sp_log "uptime at start: $UPTIME_START"

sp_setup || fail "namespace/veth setup"
OFFLOAD=$(ip netns exec "$SP_NS_C" "$SP_BIN/wgkey" offload) || fail "offload probe"
sp_log "offload: $OFFLOAD"
sp_start_servers
sp_start_wg || fail "wireguard-go tunnel did not come up"
sp_log "wireguard-go up (pids ${SP_WG_PIDS[*]})"
sp_start_bondtun || fail "bondtun tunnel did not come up"
sp_log "bondtun up (pids ${SP_BT_PIDS[*]})"

# field LINE KEY: the value of KEY=... in a RESULT line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# measure SYS LOAD REP: one run; appends "rep mbps cpu_pct pps loss" to
# res/SYS-LOAD, or nothing when the run failed.
measure() {
	local sys=$1 load=$2 rep=$3 dst cpid c0=0 c1=0 t0 t1 rc=0 res mbps pps=na loss=na cpu=na
	local -a pids=() cmd
	case $sys in
	raw) dst=10.201.0.1 ;;
	wireguard) dst=10.78.0.1 pids=("${SP_WG_PIDS[@]}") ;;
	bondtun) dst=10.77.0.1 pids=("${SP_BT_PIDS[@]}") ;;
	esac
	case $load in
	tcp1) cmd=(client -c "$dst:5201" -P 1 -t "${T}s" -omit "${OMIT}s") ;;
	tcp4) cmd=(client -c "$dst:5201" -P 4 -t "${T}s" -omit "${OMIT}s") ;;
	udp200) cmd=(udp-client -c "$dst:5202" -size 200 -t "${T}s") ;;
	esac
	timeout $((T + 45)) ip netns exec "$SP_NS_C" "$SP_BIN/btperf" "${cmd[@]}" >"$WORK/run.out" 2>"$WORK/run.err" &
	cpid=$!
	RUN_PID=$cpid
	sleep "$OMIT"
	((${#pids[@]})) && c0=$(sp_cpu_ticks "${pids[@]}")
	t0=$(sp_now)
	sleep "$WIN"
	((${#pids[@]})) && c1=$(sp_cpu_ticks "${pids[@]}")
	t1=$(sp_now)
	wait "$cpid" || rc=$?
	RUN_PID=
	res=$(grep '^RESULT' "$WORK/run.out" | tail -n 1) || true
	if ((rc != 0)) || [[ -z $res ]]; then
		sp_log "rep $rep $sys $load: FAILED (exit $rc): $(tail -n 2 "$WORK/run.err" | tr '\n' ' ')"
		return 0
	fi
	mbps=$(field "$res" mbps)
	[[ $load == udp* ]] && pps=$(field "$res" pps) loss=$(field "$res" loss)
	((${#pids[@]})) && cpu=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) \
		'BEGIN { printf "%.1f", d / hz / (ns / 1e9) * 100 }')
	echo "$rep $mbps $cpu $pps $loss" >>"$WORK/res/$sys-$load"
	local extra=
	[[ $pps != na ]] && extra=" $pps pkt/s loss $loss"
	[[ $cpu != na ]] && extra+=" cpu $cpu%"
	sp_log "rep $rep $sys $load: $mbps Mbit/s$extra"
}

for ((rep = 1; rep <= REPS; rep++)); do
	for load in "${LOADS[@]}"; do
		for ((i = 0; i < ${#SYSTEMS[@]}; i++)); do
			measure "${SYSTEMS[(i + rep - 1) % ${#SYSTEMS[@]}]}" "$load" "$rep"
		done
	done
done
UPTIME_END=$(uptime)
sp_log "uptime at end: $UPTIME_END"
for f in "$WORK"/bondtun-*.log "$WORK"/wg?"$SP_SFX".log; do
	[[ -s $f ]] && { sp_log "--- tail of $(basename "$f")"; tail -n 5 "$f" >&2; }
done

# col SYS LOAD N: median of column N (1-based) of the results, "na" if none.
col() {
	[[ -f $WORK/res/$1-$2 ]] || { echo na; return; }
	awk -v n="$3" '$n != "na" { print $n }' "$WORK/res/$1-$2" | sp_median
}
# per_cpu SYS LOAD N: median over reps of column N / (cpu/100).
per_cpu() {
	[[ -f $WORK/res/$1-$2 ]] || { echo na; return; }
	awk -v n="$3" '$3 != "na" && $3 > 0 && $n != "na" { print $n / ($3 / 100) }' "$WORK/res/$1-$2" | sp_median
}
# range SYS LOAD: "min–max" of the Mbit/s over reps.
range() {
	[[ -f $WORK/res/$1-$2 ]] || { echo "-"; return; }
	sort -g -k2,2 "$WORK/res/$1-$2" | awk 'NR == 1 { lo = $2 } { hi = $2 } END { printf "%.1f–%.1f", lo, hi }'
}
# ratio LOAD N: median over reps of bondtun/wireguard in column N (same rep);
# with N=cpu the ratio of the per-core figures.
ratio() {
	[[ -f $WORK/res/bondtun-$1 && -f $WORK/res/wireguard-$1 ]] || { echo na; return; }
	join <(sort -k1,1 "$WORK/res/bondtun-$1") <(sort -k1,1 "$WORK/res/wireguard-$1") |
		awk -v n="$2" '{
			if (n == "cpu") { if ($3 > 0 && $7 > 0) print ($2 / $3) / ($6 / $7) }
			else if ($(n + 4) > 0) print $n / $(n + 4) }' | sp_median
}
# num PREC VALUE: VALUE with PREC decimals, or "na".
num() { if [[ $2 == na ]]; then echo na; else awk -v p="$1" -v v="$2" 'BEGIN { printf "%.*f\n", p, v }'; fi; }
flows() { case $1 in tcp1) echo 1 ;; tcp4) echo 4 ;; *) echo "$1" ;; esac; }

REPORT=$WORK/report.md
{
	echo "# bondtun single-path speed, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "One veth pair between two namespaces; upload (client → server); $REPS reps × ${T} s per run"
	echo "(goodput after ${OMIT} s, CPU over [${OMIT} s, $((T))-0.5 s]); medians over reps."
	echo "bondtun $BT_SRC, wireguard-go $WG_VERSION,"
	echo "kernel $(uname -r), $(nproc) cores. CPU = both tunnel processes, % of one core."
	echo
	echo "- load at start: ${UPTIME_START##*load average: }"
	echo "- load at end: ${UPTIME_END##*load average: }"
	echo
	echo "| system | load | Mbit/s (median) | min–max | pkt/s | loss | CPU % | Mbit/s per core | reps |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
	for sys in "${SYSTEMS[@]}"; do
		for load in "${LOADS[@]}"; do
			n=0
			[[ -f $WORK/res/$sys-$load ]] && n=$(wc -l <"$WORK/res/$sys-$load")
			echo "| $sys | $load | $(num 1 "$(col "$sys" "$load" 2)") | $(range "$sys" "$load") |" \
				"$(num 0 "$(col "$sys" "$load" 4)") | $(num 3 "$(col "$sys" "$load" 5)") |" \
				"$(num 0 "$(col "$sys" "$load" 3)") | $(num 1 "$(per_cpu "$sys" "$load" 2)") | $n/$REPS |"
		done
	done
	echo
	echo '```'
	echo "SPEED offload $OFFLOAD"
	for sys in "${SYSTEMS[@]}"; do
		for load in "${LOADS[@]}"; do
			line="SPEED system=$sys flows=$(flows "$load") mbps=$(num 1 "$(col "$sys" "$load" 2)")"
			line+=" cpu_pct=$(num 1 "$(col "$sys" "$load" 3)") mbps_per_cpu=$(num 1 "$(per_cpu "$sys" "$load" 2)")"
			[[ $load == udp* ]] && line+=" pps=$(num 0 "$(col "$sys" "$load" 4)") loss=$(num 4 "$(col "$sys" "$load" 5)")" &&
				line+=" pps_per_cpu=$(num 0 "$(per_cpu "$sys" "$load" 4)")"
			echo "$line"
		done
	done
	for load in "${LOADS[@]}"; do
		echo "SPEED ratio_vs_wg=$(num 3 "$(ratio "$load" 2)") flows=$(flows "$load")" \
			"bondtun_mbps=$(num 1 "$(col bondtun "$load" 2)") wireguard_mbps=$(num 1 "$(col wireguard "$load" 2)")" \
			"per_cpu_ratio_vs_wg=$(num 3 "$(ratio "$load" cpu)")"
	done
	echo '```'
} >"$REPORT"
mkdir -p out
OUT=out/speed-$(date -u +%Y%m%dT%H%M%SZ).md
cp "$REPORT" "$OUT"
cat "$REPORT"
sp_log "report copied to $OUT"
