#!/usr/bin/env bash
# bench-failover.sh [SCENARIO] [LINK]: the failover benchmark.
#
# In the two-namespace testbed (scripts/lib/testbed.sh), SCENARIO H (default;
# E = 2 x 100 Mbit/s 5 ms, L = H with 1 % loss on DSL; CABLE_*/DSL_* override),
# it measures in one run:
#   1. LINK's surviving partner alone: one TCP download, its goodput SURV;
#   2. kernel MPTCP (one subflow per uplink, first subflow on LINK), then
#      3. bondtun: one TCP download with -reverse -t 20s; at t = 8 s after
#      btperf starts, `linkemu ctl LINK cut both` (in-flight packets lost),
#      and LINK stays down until the download ends;
#   4. bondtun only: with the tunnel idle, cut LINK, ping through the tunnel
#      every 50 ms (idle_resume_s); restore LINK, and once it is up, cut it
#      again with no traffic at all (idle_detect_s); then with a download
#      running, restore LINK and time until LINK's client interface receives
#      traffic again (restore_s).
# FAILOVER_REPS repetitions (default 3) of 2 and 3-4; medians.
#
# Definitions (also in docs/FAILOVER.md), on btperf's receiver timeline of
# 0.1 s intervals, grouped into the printed 0.5 s intervals:
#   pre-cut rate  median of the 0.5 s intervals starting in [3 s, 8 s)
#                 (8 s = FAILOVER_CUT);
#   recover_s     from the cut to the start of the first run of >= 2
#                 consecutive 0.5 s intervals (from the one holding the cut;
#                 ending by T) each >= 50 % of SURV; "none" if there is none;
#   stall_s       total time after the cut, until the end of that run's
#                 first 0.5 s interval (or T), in 0.1 s intervals below 10 %
#                 of the pre-cut rate (0.1 s, not 0.5 s: the target is 0.3 s);
#   before/after  pre-cut rate / median of the 0.5 s intervals in [12 s, 19.5 s);
#   reset         yes if btperf failed or its data ended before -t; then the
#                 timeline comes from the client's rx counters (bt0 for
#                 bondtun, both uplinks for MPTCP) and the line says source=counters;
#   idle_resume_s from the idle cut to the arrival of the first ping reply
#                 (pings every 50 ms from the cut; lost_after: later pings lost);
#   idle_detect_s from a cut with no traffic to the later of the two ends'
#                 log lines saying LINK's path turned suspect (or dead, down);
#   restore_s     from the restore to the end of the first 50 ms sample of
#                 LINK's client rx_bytes at >= 2 Mbit/s.
# Alignment: the cut is placed at t0 + 8 s, t0 being the wall clock just
# before btperf is started; btperf's time zero is later by its start-up and
# the TCP handshake (one RTT, 20-60 ms in H), so the cut's position on the
# timeline is taken as (cut - t0) and is early by those tens of ms.
#
# Output: progress on stderr; intervals, one line per repetition and the
# median lines "FAILOVER system=... scenario=..." on stdout, copied to
# out/failover-<date>.md; both ends' flight recorders of each bondtun download in
# out/failover-traces/SCEN-LINK-repN-{server,client}.csv. Needs root (otherwise prints SKIP and exits 0).
# `bench-failover.sh selftest` checks the analysis on synthetic input.
# Environment: FAILOVER_REPS [3], BIN [build into a temporary dir],
# FAILOVER_T [20] download seconds, FAILOVER_CUT [8], FAILOVER_CC [cubic],
# FAILOVER_SYSTEMS ["mptcp bondtun"] which systems' downloads run, FAILOVER_IDLE [1]
# (0: bondtun's idle cuts and restore are left out; a quick check of the stall alone),
# FAILOVER_FLAP [0]: N > 0 makes the download's cut N outages of 0.3 s, 0.5 s apart (a
# flapping link: then "after" is both links' rate again, and stall_s the time lost in them).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

SCEN=${1:-H}
LINK=${2:-cable}
REPS=${FAILOVER_REPS:-3}
T=${FAILOVER_T:-20}
CUT=${FAILOVER_CUT:-8}
CC=${FAILOVER_CC:-cubic}
SYSTEMS=${FAILOVER_SYSTEMS:-mptcp bondtun}
IDLE=${FAILOVER_IDLE:-1}
FLAP=${FAILOVER_FLAP:-0}
RES_MS=100 # btperf interval; printed intervals are BIN seconds
BIN_S=0.5
RESTORE_MBPS=2

usage() { echo "usage: $0 [H|E|L] [cable|dsl]   or   $0 selftest" >&2; exit 2; }
if [[ $SCEN == selftest ]]; then
	# shellcheck source=lib/failover.sh
	source scripts/lib/failover.sh
	fo_selftest && echo "PASS bench-failover selftest"
	exit
fi
# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
tb_scenario "$SCEN" || usage
# Cut link = K, surviving link = V: client address, server address, client device.
case $LINK in
cable) KA=10.100.1.2 KS=10.100.1.1 KD=up0 VA=10.100.2.2 VS=10.100.2.1 VD=up1 SURV_NAME=dsl ;;
dsl) KA=10.100.2.2 KS=10.100.2.1 KD=up1 VA=10.100.1.2 VS=10.100.1.1 VD=up0 SURV_NAME=cable ;;
*) usage ;;
esac
[[ $REPS =~ ^[1-9][0-9]*$ ]] || usage

if [[ $(id -u) -ne 0 ]]; then
	echo "SKIP bench-failover.sh: needs root (network namespaces, TUN devices)"
	exit 0
fi

# shellcheck source=lib/failover.sh
source scripts/lib/failover.sh

SFX=fo$$
WORK=$(mktemp -d /tmp/bondtun-failover.XXXXXX)
PIDS=()
tb_cleanup_on_exit

BIN_GIVEN=${BIN:-}
if [[ -z ${BIN:-} ]]; then
	BIN=$WORK/bin
	fo_log "building into $BIN"
	# shellcheck source=lib/version.sh
	source scripts/lib/version.sh
	bt_build -o "$BIN/" ./cmd/bondtun ./cmd/linkemu ./cmd/btperf
fi
mkdir -p out out/failover-traces
OUT=out/failover-$(date -u +%Y%m%dT%H%M%SZ).md
{
	echo "# bench-failover $SCEN $LINK, $(date -u '+%F %T UTC')"
	echo
	echo "reps=$REPS T=${T}s cut=${CUT}s flap=$FLAP cc=$CC commit=$(git rev-parse --short HEAD 2>/dev/null || echo ?)" \
		"tree=$(if [[ -n ${BIN_GIVEN:-} ]]; then echo "prebuilt $BIN"; elif git diff --quiet HEAD 2>/dev/null; then echo clean; else echo modified; fi)" \
		"load_before=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
	echo
	echo '```'
} >"$WORK/report.md"
# say LINE...: a result line, to stdout and the report (copied to $OUT at
# the end, so an interrupted run leaves no partial report).
say() { printf '%s\n' "$*" | tee -a "$WORK/report.md"; }

TB_DIR=$WORK
LINKEMU=$BIN/linkemu # also read by tb_ctl
tb_setup "$SFX" 2>"$WORK/testbed.log" ||
	{ cat "$WORK/testbed.log" >&2; exit 1; }
C=(ip netns exec "$TB_NS_C")
S=(ip netns exec "$TB_NS_S")
"${S[@]}" "$BIN/btperf" server -l 0.0.0.0:5201 >"$WORK/btperf.log" 2>&1 &
PIDS+=($!)
"${S[@]}" "$BIN/btperf" server -l 0.0.0.0:5202 -mptcp >"$WORK/btperf-mptcp.log" 2>&1 &
PIDS+=($!)
sleep 0.3

# btperf_bounded ARGS...: a btperf client in the client namespace, ended
# by timeout at the test duration plus 35 s at the latest.
btperf_bounded() { timeout -k 2 $((T + 35)) "${C[@]}" "$BIN/btperf" client -cc "$CC" "$@"; }

fo_log "surviving link $SURV_NAME alone (8 s, 1 flow)"
surv=$(btperf_bounded -c "$VS:5201" -bind "$VA" -reverse -t 8s -omit 2s | sed -n 's/^RESULT mbps=\([0-9.]*\).*/\1/p') || true
[[ -n $surv ]] || { fo_log "the surviving link carried nothing"; exit 1; }
say "LINK name=$SURV_NAME alone_mbps=$surv"

# cut_run SYSTEM REP DEVS -- BTPERF_ARGS...: one download with a cut at
# CUT s; prints the repetition's line and saves its intervals.
cut_run() {
	local sys=$1 rep=$2 devs=() out err rc=0 t0 ta tb tcut secs src=btperf reset=no res
	shift 2
	while [[ $1 != -- ]]; do devs+=("$1"); shift; done
	shift
	out=$WORK/$sys-$rep.out err=$WORK/$sys-$rep.err
	: >"$WORK/$sys-$rep.samples"
	fo_sampler "$TB_NS_C" "$WORK/$sys-$rep.samples" "${devs[@]}"
	local smp=$FO_SAMPLER
	PIDS+=("$smp")
	t0=$(fo_now)
	btperf_bounded "$@" -reverse -t "${T}s" -omit 2s -i "${RES_MS}ms" >"$out" 2>"$err" &
	local bp=$!
	PIDS+=("$bp")
	fo_sleep_until "$(awk -v a="$t0" -v c="$CUT" 'BEGIN { printf "%.6f", a + c }')"
	ta=$(fo_now)
	tb_ctl "$LINK" cut both >/dev/null
	tb=$(fo_now)
	local f
	for ((f = 1; f <= FLAP; f++)); do
		sleep 0.3
		tb_ctl "$LINK" restore both >/dev/null
		((f < FLAP)) || break
		sleep 0.5
		tb_ctl "$LINK" cut both >/dev/null
	done
	wait "$bp" || rc=$?
	tb_forget "$bp"
	tb_stop "$smp"
	tb_ctl "$LINK" restore both >/dev/null
	tcut=$(awk -v a="$ta" -v b="$tb" -v t0="$t0" 'BEGIN { printf "%.3f", (a + b) / 2 - t0 }')
	secs=$(sed -n 's/^RESULT .*secs=\([0-9.]*\).*/\1/p' "$out")
	if [[ $rc -ne 0 || -z $secs ]] || awk -v s="$secs" -v t="$T" 'BEGIN { exit !(s + 2 < t - 0.5) }'; then
		reset=yes
		fo_log "$sys rep $rep: btperf status $rc: $(tail -n 1 "$err")"
	fi
	if grep -q '^t=' "$out"; then
		grep '^t=' "$out" >"$WORK/$sys-$rep.tl"
	else
		src=counters
		fo_counter_timeline "$t0" <"$WORK/$sys-$rep.samples" >"$WORK/$sys-$rep.tl"
	fi
	fo_analyze "$tcut" "$surv" "$T" "$BIN_S" "$CUT" <"$WORK/$sys-$rep.tl" >"$WORK/$sys-$rep.an"
	grep '^iv ' "$WORK/$sys-$rep.an" >"$WORK/$sys-$rep.iv" || true
	res=$(sed -n 's/^res //p' "$WORK/$sys-$rep.an")
	say "REP system=$sys scenario=$SCEN rep=$rep cut_t=$tcut cut_cmd_ms=$(awk -v a="$ta" -v b="$tb" 'BEGIN { printf "%.0f", (b - a) * 1000 }') $res reset=$reset source=$src"
	echo "$res reset=$reset" >>"$WORK/$sys.reps"
}

# medians SYSTEM KEY...: "KEY=median" of each key over SYSTEM's repetitions
# (a repetition without a value counts as +infinity: "none" wins a tie).
medians() {
	local sys=$1 k m line=""
	shift
	for k in "$@"; do
		m=$(sed -n "s/.*\b$k=\([^ ]*\).*/\1/p" "$WORK/$sys.reps" | awk '{ print ($1 == "none") ? 1e9 : $1 }' |
			fo_median | awk '{ print ($1 == "none" || $1 >= 1e8) ? "none" : $1 }')
		line+=" $k=$m"
	done
	echo "$line"
}

# --- kernel MPTCP -------------------------------------------------------------
if [[ " $SYSTEMS " != *" mptcp "* ]]; then
	fo_log "FAILOVER_SYSTEMS: MPTCP left out"
else
	if fo_mptcp_setup "$TB_NS_C" "$TB_NS_S" "$KA" "$KS" "$KD" "$VA" "$VS" "$VD" 2>>"$WORK/testbed.log"; then
		for ((r = 1; r <= REPS; r++)); do
			fo_log "mptcp rep $r/$REPS: ${T} s download, cut $LINK at ${CUT} s"
			cut_run mptcp "$r" up0 up1 -- -c "$KS:5202" -bind "$KA" -mptcp
			sleep 2
		done
	else
		fo_log "MPTCP set-up failed (see below); skipping MPTCP"
		tail -n 5 "$WORK/testbed.log" >&2
	fi
	fo_mptcp_teardown "$TB_NS_C" "$TB_NS_S"
fi

# --- bondtun ------------------------------------------------------------------
tunnel_up() {
	local i
	for ((i = 0; i < 50; i++)); do
		timeout 2 "${C[@]}" ping -c1 -W0.3 10.77.0.1 >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}
# link_up: wait up to 10 s until both ends report LINK's path up.
link_up() {
	local w pat="\"name\":\"$LINK→[^\"]*\",[^}]*\"liveness\":\"up\""
	for ((w = 0; w < 100; w++)); do
		if grep -q "$pat" <<<"$("${C[@]}" "$BIN/bondtun" status -c configs/client.yaml -json 2>/dev/null)" &&
			grep -q "$pat" <<<"$("${S[@]}" "$BIN/bondtun" status -c configs/server.yaml -json 2>/dev/null)"; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}
# cut_link: cut LINK both ways; prints the cut's wall-clock time (mid-command).
cut_link() {
	local ta tb
	ta=$(fo_now)
	tb_ctl "$LINK" cut both >/dev/null
	tb=$(fo_now)
	awk -v a="$ta" -v b="$tb" 'BEGIN { printf "%.6f", (a + b) / 2 }'
}
# tunnel_down: end this repetition's client and server and remove what they left.
tunnel_down() {
	tb_stop "$cli"
	tb_stop "$srv"
	"${C[@]}" "$BIN/bondtun" down -c configs/client.yaml >/dev/null 2>&1 || true
	"${S[@]}" "$BIN/bondtun" down -c configs/server.yaml >/dev/null 2>&1 || true
}
# `bondtun up` refuses a private key that group or others can read (docs/SECURITY.md).
chmod 600 configs/server.yaml configs/client.yaml
for ((r = 1; r <= REPS; r++)); do
	[[ " $SYSTEMS " == *" bondtun "* ]] || break
	fo_log "bondtun rep $r/$REPS: starting server and client"
	"${S[@]}" "$BIN/bondtun" up -c configs/server.yaml 2>>"$WORK/server.log" &
	srv=$!
	PIDS+=("$srv")
	sleep 0.3
	"${C[@]}" "$BIN/bondtun" up -c configs/client.yaml 2>>"$WORK/client.log" &
	cli=$!
	PIDS+=("$cli")
	if ! tunnel_up; then
		fo_log "the tunnel did not come up; logs:"
		tail -n 20 "$WORK/server.log" "$WORK/client.log" >&2
		exit 1
	fi
	sleep 2 # every path validated and measured
	fo_log "bondtun rep $r/$REPS: ${T} s download, cut $LINK at ${CUT} s"
	cut_run bondtun "$r" bt0 -- -c 10.77.0.1:5201
	# Both ends' flight recorders (docs/TRACE.md) cover the whole download: what each
	# path's estimates, windows and queues did around the cut.
	for end in server client; do
		ns=("${S[@]}")
		[[ $end == client ]] && ns=("${C[@]}")
		trace=out/failover-traces/$SCEN-$LINK-rep$r-$end.csv
		timeout -k 2 20 "${ns[@]}" "$BIN/bondtun" status -c "configs/$end.yaml" --trace "$trace" >/dev/null 2>&1 ||
			{ fo_log "bondtun rep $r/$REPS: the $end's flight recorder dump failed"; rm -f "$trace"; }
	done
	sleep 3
	if [[ $IDLE == 0 ]]; then
		tunnel_down
		continue
	fi

	if ! tunnel_up; then
		fo_log "bondtun rep $r/$REPS: the tunnel does not carry a ping before the idle cut"
	fi
	# The idle cuts only measure something if LINK is back in service (it was cut and
	# restored above): wait until both ends report its path up.
	link_up || fo_log "bondtun rep $r/$REPS: $LINK's path is not up before the idle cut"
	sleep 2 # idle
	fo_log "bondtun rep $r/$REPS: idle cut, then ping every 50 ms"
	tcut=$(cut_link)
	timeout 10 "${C[@]}" ping -D -n -i 0.05 -W 1 -w 5 10.77.0.1 >"$WORK/ping-$r.out" 2>&1 || true
	read -r idle lost < <(fo_ping_resume "$tcut" <"$WORK/ping-$r.out")

	fo_log "bondtun rep $r/$REPS: idle cut, no traffic: when does each end notice?"
	tb_ctl "$LINK" restore both >/dev/null
	link_up || fo_log "bondtun rep $r/$REPS: $LINK's path is not up before the silent cut"
	sleep 2
	tcut=$(cut_link)
	sleep 1.5
	dc=$(fo_log_event "$tcut" "$LINK→" <"$WORK/client.log")
	ds=$(fo_log_event "$tcut" "$LINK→" <"$WORK/server.log")
	detect=$(awk -v a="$dc" -v b="$ds" 'BEGIN { if (a == "none" || b == "none") print "none"; else printf "%.3f", (a > b ? a : b) }')

	fo_log "bondtun rep $r/$REPS: restore $LINK during a download"
	: >"$WORK/restore-$r.samples"
	fo_sampler "$TB_NS_C" "$WORK/restore-$r.samples" "$KD"
	smp=$FO_SAMPLER
	PIDS+=("$smp")
	timeout -k 2 25 "${C[@]}" "$BIN/btperf" client -cc "$CC" -c 10.77.0.1:5201 -reverse -t 6s >/dev/null 2>&1 &
	bp=$!
	PIDS+=("$bp")
	sleep 2
	tb_ctl "$LINK" restore both >/dev/null
	trest=$(fo_now)
	wait "$bp" || true
	tb_forget "$bp"
	tb_stop "$smp"
	rest=$(fo_first_traffic "$trest" "$RESTORE_MBPS" <"$WORK/restore-$r.samples")
	say "REP system=bondtun scenario=$SCEN rep=$r idle_resume_s=$idle lost_after=$lost idle_detect_s=$detect (client $dc, server $ds) restore_s=$rest"
	echo "idle_resume_s=$idle idle_detect_s=$detect restore_s=$rest" >>"$WORK/bondtun-idle.reps"

	tunnel_down
done

# --- report -------------------------------------------------------------------
say ""
say "intervals (Mbit/s per ${BIN_S} s; END of each interval; cut at ~${CUT} s):"
ivfiles=()
hdr="t_end"
for sys in mptcp bondtun; do
	for ((r = 1; r <= REPS; r++)); do
		[[ -f $WORK/$sys-$r.iv ]] || continue
		ivfiles+=("$WORK/$sys-$r.iv")
		hdr+=" $sys#$r"
	done
done
if ((${#ivfiles[@]})); then
	say "$hdr"
	awk -v b="$BIN_S" '
		FNR == 1 { f++ }
		{ k = int($2 / b + 1e-6); v[k, f] = $4; if (k > mk) mk = k }
		END {
			for (k = 0; k <= mk; k++) {
				line = sprintf("%5.1f", (k + 1) * b)
				for (i = 1; i <= f; i++) line = line sprintf(" %8s", ((k, i) in v) ? v[k, i] : "-")
				print line
			}
		}' "${ivfiles[@]}" | tee -a "$WORK/report.md"
fi
say ""
for sys in mptcp bondtun; do
	[[ -f $WORK/$sys.reps ]] || continue
	resets=$(grep -c 'reset=yes' "$WORK/$sys.reps" || true)
	reset=no
	((resets > 0)) && reset="yes($resets/$REPS)"
	say "FAILOVER system=$sys scenario=$SCEN$(medians "$sys" stall_s recover_s before after) reset=$reset"
done
if [[ -f $WORK/bondtun-idle.reps ]]; then
	say "FAILOVER system=bondtun scenario=$SCEN$(medians bondtun-idle idle_resume_s idle_detect_s restore_s)"
fi
{
	echo '```'
	echo
	echo "load_after=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
} >>"$WORK/report.md"
cp "$WORK/report.md" "$OUT"
fo_log "report copied to $OUT"
