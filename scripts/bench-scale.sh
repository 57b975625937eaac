#!/usr/bin/env bash
# bench-scale.sh: one server with many configured peers (docs/BENCHMARKS.md "Scale").
#
# The real thing, not a model of it: `bondtun up` of a server file with SCALE_PEERS peers
# (one /32 each, so as many kernel routes) in a network namespace of its own, bsc-PID,
# listening on 10.98.0.1 (on the namespace's lo). Keys come from `btflood peers` (derived from
# a seed, so `btflood sessions` can use them without a file of private keys).
#   memory   VmRSS of the up process once it listens, with 1 peer and with SCALE_PEERS;
#            the difference per peer is the cost of an idle configured peer (goal: ≤ 1 KiB).
#   reload   SCALE_RELOADS times, one peer's allowed_ips changed in the file, then
#            `bondtun reload -c FILE`: the command's wall time (reload_ms, goal < 100 ms), the
#            time up logged for it (up_ms), and its two parts: load_ms (read, decode and
#            validate the file) and apply_ms (compare, swap the peer table, routes).
#   sessions `btflood sessions` opens sessions (TLS 1.3 with a client certificate, HELLO,
#            WELCOME, BYE) with the peers' keys in turn, SCALE_CONC at once, for SCALE_HS_T s,
#            on the same 2 cores as the server: handshakes_per_s, the server's CPU, and the
#            handshakes per second of one fully busy server core.
# Output:
#   SCALE peers=N rss_mb=… rss_1peer_mb=… bytes_per_peer=… start_s=… reload_ms=… up_ms=…
#         load_ms=… apply_ms=…
#   SCALE handshakes_per_s=… server_cpu_pct=… per_server_core=… failed=… conc=…
# Bounded: about 60 s after the build with the defaults. Every process it starts is ended
# by PID, and the namespace is deleted on exit. Needs root (otherwise prints SKIP).
# Environment: SCALE_PEERS [10000], SCALE_RELOADS [5], SCALE_HS_T [10], SCALE_CONC [16],
# BIN [build into a temporary dir]; SCALE_KEEP=1 keeps the work directory (up's log),
# SCALE_DEBUG=1 prints the namespace's TCP drop and retransmission counters at the end.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

PEERS=${SCALE_PEERS:-10000}
RELOADS=${SCALE_RELOADS:-5}
HS_T=${SCALE_HS_T:-10}
CONC=${SCALE_CONC:-16}
[[ $PEERS =~ ^[1-9][0-9]{0,5}$ && $PEERS -le 200000 && $RELOADS =~ ^[1-9]$ && $HS_T =~ ^[1-9][0-9]?$ && $CONC =~ ^[1-9][0-9]?$ ]] ||
	{ echo "SCALE_PEERS 1-200000, SCALE_RELOADS 1-9, SCALE_HS_T 1-99, SCALE_CONC 1-99" >&2; exit 2; }

if [[ $(id -u) -ne 0 ]]; then
	echo "SKIP bench-scale.sh: needs root (network namespace, TUN device)"
	exit 0
fi

log() { printf '[scale] %s\n' "$*" >&2; }

NS=bsc-$$
WORK=$(mktemp -d /tmp/bondtun-scale.XXXXXX)
UP_PID=
stop_up() {
	[[ -n $UP_PID ]] || return 0
	kill -TERM "$UP_PID" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$UP_PID" 2>/dev/null || true
	wait "$UP_PID" 2>/dev/null || true
	UP_PID=
}
cleanup() {
	stop_up
	ip netns del "$NS" 2>/dev/null || true
	[[ -n ${SCALE_KEEP:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT

BIN=${BIN:-$WORK}
if [[ $BIN == "$WORK" ]]; then
	log "building"
	go build -o "$WORK/bondtun" ./cmd/bondtun
	go build -o "$WORK/btflood" ./cmd/btflood
fi

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 10.98.0.1/32 dev lo

KEY=$("$BIN/bondtun" genkey)
PUB=$(printf '%s\n' "$KEY" | "$BIN/bondtun" pubkey)
CFG=$WORK/server.yaml

# write_config N: the server file with N peers.
write_config() {
	{
		printf 'version: 1\nprivate_key: "%s"\nlog_level: info\n' "$KEY"
		printf 'tun:\n  name: bsc0\n  addresses: [10.127.255.254/10]\n'
		printf 'listen:\n  port: 7350\n  addresses: [10.98.0.1]\n'
		"$BIN/btflood" peers -n "$1"
	} >"$CFG.tmp"
	chmod 600 "$CFG.tmp"
	mv "$CFG.tmp" "$CFG"
}

# start_up: runs up in the namespace and waits until it listens; START_S is the seconds
# that took.
start_up() {
	local t0 t1
	t0=$(date +%s%N)
	: >"$WORK/up.log"
	ip netns exec "$NS" "$BIN/bondtun" up -c "$CFG" >/dev/null 2>"$WORK/up.log" &
	UP_PID=$! # ip netns exec execs the command: this is up's PID
	for _ in $(seq 600); do
		grep -q 'msg=listening' "$WORK/up.log" && break
		kill -0 "$UP_PID" 2>/dev/null || { cat "$WORK/up.log" >&2; exit 1; }
		sleep 0.1
	done
	grep -q 'msg=listening' "$WORK/up.log" || { log "up did not start in 60 s"; exit 1; }
	t1=$(date +%s%N)
	START_S=$(echo "scale=2; ($t1 - $t0) / 1000000000" | bc)
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

log "baseline: 1 peer"
write_config 1
start_up
sleep 2
RSS1=$(rss_kib "$UP_PID")
stop_up

log "$PEERS peers"
write_config "$PEERS"
start_up
sleep 2
RSSN=$(rss_kib "$UP_PID")
ROUTES=$(ip -n "$NS" route show table 7349 dev bsc0 | wc -l)
log "up in ${START_S} s, ${RSSN} KiB, $ROUTES routes through the tunnel"

# Each reload moves peer 0 between its own /32 and 10.126.0.1/32: one peer changed.
cp "$CFG" "$CFG.a"
sed '0,/allowed_ips: \[10.64.0.1\/32\]/s//allowed_ips: [10.126.0.1\/32]/' "$CFG.a" >"$CFG.b"
chmod 600 "$CFG.a" "$CFG.b"
WALL=()
for i in $(seq "$RELOADS"); do
	if ((i % 2)); then cp "$CFG.b" "$CFG"; else cp "$CFG.a" "$CFG"; fi
	t0=$(date +%s%N)
	out=$(ip netns exec "$NS" "$BIN/bondtun" reload -c "$CFG")
	t1=$(date +%s%N)
	WALL+=("$(echo "scale=1; ($t1 - $t0) / 1000000" | bc)")
	log "reload $i: ${WALL[-1]} ms: $out"
done
if ! grep -q '^10.126.0.1 ' <<<"$(ip -n "$NS" route show table 7349 dev bsc0)"; then
	((RELOADS % 2)) && { log "the reloaded route 10.126.0.1 is not in the table"; exit 1; }
fi
RELOAD_MS=$(printf '%s\n' "${WALL[@]}" | median)
# up logs took=… load=… apply=… (12.345ms, 1.2s or 800µs); field $1 in ms, median.
logged_ms() {
	grep 'msg="reload: applied"' "$WORK/up.log" | sed -n "s/.* $1=\([0-9.]*\)\(ms\|s\|µs\).*/\1 \2/p" |
		awk '{v = $1; if ($2 == "s") v *= 1000; if ($2 == "µs") v /= 1000; printf "%.1f\n", v}' | median
}
TOOK_MS=$(logged_ms took)
LOAD_MS=$(logged_ms load)
APPLY_MS=$(logged_ms apply)
BYTES_PER_PEER=$(( (RSSN - RSS1) * 1024 / (PEERS > 1 ? PEERS - 1 : 1) ))
echo "SCALE peers=$PEERS rss_mb=$(echo "scale=1; $RSSN / 1024" | bc) rss_1peer_mb=$(echo "scale=1; $RSS1 / 1024" | bc) bytes_per_peer=$BYTES_PER_PEER start_s=$START_S reload_ms=$RELOAD_MS up_ms=$TOOK_MS load_ms=$LOAD_MS apply_ms=$APPLY_MS"

log "sessions: $CONC at once for $HS_T s"
HZ=$(getconf CLK_TCK)
c0=$(cpu_ticks "$UP_PID")
out=$(ip netns exec "$NS" "$BIN/btflood" sessions -c 10.98.0.1:7350 -server-key "$PUB" -n "$PEERS" -conc "$CONC" -t "${HS_T}s")
c1=$(cpu_ticks "$UP_PID")
log "$out"
line=$(grep 'kind=sessions' <<<"$out")
secs=$(sed -n 's/.* secs=\([0-9.]*\).*/\1/p' <<<"$line")
rate=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$line")
failed=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$line")
completed=$(sed -n 's/.* completed=\([0-9]*\).*/\1/p' <<<"$line")
cpu_pct=$(echo "scale=0; 100 * ($c1 - $c0) / $HZ / $secs" | bc)
per_core=$(echo "scale=0; $completed * $HZ / ($c1 - $c0)" | bc)
echo "SCALE handshakes_per_s=$rate server_cpu_pct=$cpu_pct per_server_core=$per_core failed=$failed conc=$CONC"
[[ -z ${SCALE_DEBUG:-} ]] || ip netns exec "$NS" nstat -az 2>/dev/null | grep -Ei 'listen|TW|retrans|drop|overflow' | grep -v ' 0 ' >&2
