#!/usr/bin/env bash
# bench-idle.sh: what one server process pays for established sessions that carry nothing.
# `btidle listen` (cmd/btidle, the library's listener with IDLE_N configured peers) on
# 127.0.0.1, `btidle dial` opening IDLE_N library connections to it from 127.0.0.2; once all
# are established and IDLE_SETTLE s have passed, the server process is watched for IDLE_T s:
#   IDLE sessions=N cpu_pct=… wakeups_per_s=… ctx_switches_per_s=… rss_mb=…
# cpu_pct: the server's user + system time, % of one core; wakeups_per_s: its timer queue's
# callbacks per second (internal/timerq), ctx_switches_per_s: its threads' context switches;
# rss_mb: its resident memory at the end. The same line for the same server with no session,
# measured first in the same run, is the reference (sessions=0). Goal: under 1 % of one core
# and under 20 MB for 1000 sessions. No root needed; every process it starts is ended by PID.
# Environment: IDLE_N [1000], IDLE_T [30], IDLE_SETTLE [65] (a session probes rarely only after
# a minute without data, session/params.go), BIN [build into a temporary dir], IDLE_PROF [unset:
# a directory; the loaded server writes heap.pprof and heap.pprof.goroutine there at the end of
# its window: `go tool pprof -top -inuse_space DIR/heap.pprof`].
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
N=${IDLE_N:-1000}
T=${IDLE_T:-30}
SETTLE=${IDLE_SETTLE:-65}
WORK=$(mktemp -d /tmp/bondtun-idle.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '[idle] %s\n' "$*" >&2; }

if [[ -z ${BIN:-} ]]; then
	BIN=$WORK/bin
	log "building into $BIN"
	go build -o "$BIN/" ./cmd/btidle
fi
HZ=$(getconf CLK_TCK)

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ctx_switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }'; }
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
runs() { grep '^STATS' "$1" | tail -n 1 | sed 's/.*timer_runs=//'; }

# watch PID OUT SESSIONS: the IDLE line of the server PID over T s.
watch() {
	local pid=$1 out=$2 n=$3 c0 x0 r0 c1 x1 r1
	c0=$(cpu_ticks "$pid") x0=$(ctx_switches "$pid") r0=$(runs "$out")
	sleep "$T"
	c1=$(cpu_ticks "$pid") x1=$(ctx_switches "$pid")
	sleep 1.2 # the next STATS line (every second)
	r1=$(runs "$out")
	awk -v n="$n" -v c="$((c1 - c0))" -v hz="$HZ" -v t="$T" -v x="$((x1 - x0))" -v r="$((r1 - r0))" -v rss="$(rss_mb "$pid")" \
		'BEGIN { printf "IDLE sessions=%d cpu_pct=%.2f wakeups_per_s=%.0f ctx_switches_per_s=%.0f rss_mb=%s\n", n, 100 * c / hz / t, r / (t + 1.2), x / t, rss }'
}

# The reference: the listener with its N peers configured and no session.
"$BIN/btidle" listen -n "$N" -addr 127.0.0.1:7361 -every 1s >"$WORK/ref.out" 2>&1 &
ref=$!
PIDS+=("$ref")
sleep "$SETTLE"
watch "$ref" "$WORK/ref.out" 0
kill "$ref"

PROF=()
if [[ -n ${IDLE_PROF:-} ]]; then
	mkdir -p "$IDLE_PROF"
	PROF=(-memprofile "$IDLE_PROF/heap.pprof")
fi
"$BIN/btidle" listen -n "$N" -addr 127.0.0.1:7360 -every 1s "${PROF[@]}" >"$WORK/listen.out" 2>&1 &
srv=$!
PIDS+=("$srv")
sleep 0.5
log "dialing $N sessions"
"$BIN/btidle" dial -n "$N" -addr 127.0.0.1:7360 -from 127.0.0.2 >"$WORK/dial.out" 2>&1 &
PIDS+=("$!")
for ((i = 0; i < 600; i++)); do
	grep -q '^ACCEPTED' "$WORK/listen.out" && break
	sleep 0.5
done
grep -q '^ACCEPTED' "$WORK/listen.out" || { log "not all $N sessions came up: $(tail -n 2 "$WORK/listen.out" "$WORK/dial.out")"; exit 1; }
log "$N sessions up; settling ${SETTLE} s, then watching ${T} s"
sleep "$SETTLE"
watch "$srv" "$WORK/listen.out" "$N"
if [[ -n ${IDLE_PROF:-} ]]; then
	kill -USR1 "$srv"
	for ((i = 0; i < 100; i++)); do
		grep -q '^PROFILED' "$WORK/listen.out" && break
		sleep 0.1
	done
	grep '^PROFILED' "$WORK/listen.out" >&2 || log "no profile written"
	cp "$BIN/btidle" "$IDLE_PROF/btidle"
fi
