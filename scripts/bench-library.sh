#!/usr/bin/env bash
# bench-library.sh: the Go library (package bond) as an unprivileged user, through the
# example program examples/msgpipe, which sends numbered messages from a dialer to a
# listener and reports what arrived (docs/BENCHMARKS.md).
#
# 1. Loopback: the listener on 127.0.0.1, the dialer striping from 127.0.0.2 and 127.0.0.3
#    (two paths), LIB_BYTES of messages, both run as nobody (setpriv --reuid=65534
#    --regid=65534 --clear-groups): no TUN, no root, no capabilities.
#      LIBRARY paths=2 messages=… bytes=… lost=… reordered=… mbps=… shares=…
# 2. Scenario H of the emulator testbed (scripts/lib/testbed.sh: cable 50 Mbit/s 10 ms,
#    DSL 20 Mbit/s 30 ms), the library inside the namespaces (still as nobody, still no TUN):
#    the listener on the server's 10.99.0.1, the dialer from the client's cable and DSL
#    addresses, which source routing (set up here, as a multi-homed host would have it)
#    sends out of their own links. Each repetition first measures the two links at once with
#    one TCP flow each (btperf, the same direction: client to server), then the library.
#      LIBRARY scenario=H paths=2 mbps=… sum_mbps=… ratio=…   (each repetition)
#      LIBRARY scenario=H paths=2 mbps=… ratio=…              (medians; goal ratio ≥ 0.90)
# The library's rate runs from its first message to its last, so it includes its startup;
# the links' skips btperf's first LIB_OMIT s.
# Environment: LIB_REPS [3], LIB_BYTES [64MiB] (loopback), LIB_H_BYTES [96MiB], LIB_T [10]
# link measurement seconds, LIB_OMIT [2], BIN [build into a temporary dir]. Needs root for
# the namespaces (prints SKIP otherwise); every process it starts is ended by PID.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

REPS=${LIB_REPS:-3}
BYTES=${LIB_BYTES:-64MiB}
H_BYTES=${LIB_H_BYTES:-96MiB}
T=${LIB_T:-10}
OMIT=${LIB_OMIT:-2}
[[ $REPS =~ ^[1-9]$ ]] || { echo "LIB_REPS 1-9" >&2; exit 2; }

if [[ $(id -u) -ne 0 ]]; then
	echo "SKIP bench-library.sh: needs root (to become nobody, and for the namespaces)"
	exit 0
fi

# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
# shellcheck source=lib/bench.sh
source scripts/lib/bench.sh
tb_scenario H

log() { printf '[library] %s\n' "$*" >&2; }

SFX=lib$$
WORK=$(mktemp -d /tmp/bondtun-library.XXXXXX)
chmod 755 "$WORK"
PIDS=()
trap tb_cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${BIN:-} ]]; then
	BIN=$WORK/bin
	log "building into $BIN"
	# shellcheck source=lib/version.sh
	source scripts/lib/version.sh
	bt_build -o "$BIN/" ./examples/msgpipe ./cmd/linkemu ./cmd/btperf
	chmod 755 "$BIN" "$BIN"/*
fi

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
"$BIN/msgpipe" genkey >"$WORK/listen.key"
"$BIN/msgpipe" genkey >"$WORK/dial.key"
LPUB=$("$BIN/msgpipe" pubkey <"$WORK/listen.key")
DPUB=$("$BIN/msgpipe" pubkey <"$WORK/dial.key")
chown 65534:65534 "$WORK/listen.key" "$WORK/dial.key"
chmod 600 "$WORK/listen.key" "$WORK/dial.key"

# wait_port NS PORT: wait up to 5 s for a TCP listener on PORT (in namespace NS, or here).
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		if grep -q . <<<"$(${1:+ip netns exec "$1"} ss -Htln "sport = :$2")"; then return 0; fi
		sleep 0.05
	done
	log "nothing listens on port $2"
	return 1
}

# library NS_LISTEN NS_DIAL LISTEN_ADDR FROM BYTES OUT: one transfer; the listener's LIBRARY
# line goes to OUT.
library() {
	local nsl=$1 nsd=$2 addr=$3 from=$4 bytes=$5 out=$6 lp rc=0
	timeout -k 5 120 ${nsl:+ip netns exec "$nsl"} "${NOBODY[@]}" "$BIN/msgpipe" listen -addr "$addr" \
		-key "$WORK/listen.key" -peer "$DPUB" >"$out" 2>"$out.err" &
	lp=$!
	PIDS+=("$lp")
	wait_port "$nsl" "${addr##*:}" || return 1
	timeout -k 5 120 ${nsd:+ip netns exec "$nsd"} "${NOBODY[@]}" "$BIN/msgpipe" send -to "$addr" \
		-from "$from" -key "$WORK/dial.key" -peer "$LPUB" -bytes "$bytes" 2>"$out.send" || rc=$?
	wait "$lp" || rc=$?
	bn_untrack "$lp"
	if [[ $rc != 0 ]] || ! grep -q '^LIBRARY ' "$out"; then
		log "WARNING: transfer failed (exit $rc): $(cat "$out.err" "$out.send" | tail -n 3 | tr '\n' ' ')"
		return 1
	fi
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$2"; }

# 1. Loopback.
log "loopback: $REPS × $BYTES from 127.0.0.2 and 127.0.0.3 to 127.0.0.1, as nobody"
: >"$WORK/lo.mbps"
for ((rep = 1; rep <= REPS; rep++)); do
	if library "" "" 127.0.0.1:7351 127.0.0.2,127.0.0.3 "$BYTES" "$WORK/lo.out"; then
		cat "$WORK/lo.out"
		field mbps "$WORK/lo.out" >>"$WORK/lo.mbps"
	fi
done
[[ -s $WORK/lo.mbps ]] && echo "LIBRARY loopback median_mbps=$(bn_median <"$WORK/lo.mbps") reps=$(wc -l <"$WORK/lo.mbps")"

# 2. Scenario H.
TB_DIR=$WORK
LINKEMU=$BIN/linkemu
tb_setup "$SFX" 2>"$WORK/testbed.log" || { cat "$WORK/testbed.log" >&2; exit 1; }
# Source routing in the client namespace: each uplink address reaches the server's public
# address through its own link.
ip -n "$TB_NS_C" rule add from 10.100.1.2 table 101
ip -n "$TB_NS_C" route add 10.99.0.1/32 via 10.100.1.1 dev up0 table 101
ip -n "$TB_NS_C" rule add from 10.100.2.2 table 102
ip -n "$TB_NS_C" route add 10.99.0.1/32 via 10.100.2.1 dev up1 table 102
ip -n "$TB_NS_C" route add 10.99.0.1/32 via 10.100.1.1 dev up0
ip netns exec "$TB_NS_S" "$BIN/btperf" server -l 0.0.0.0:5201 >"$WORK/btperf.log" 2>&1 &
PIDS+=("$!")
wait_port "$TB_NS_S" 5201

: >"$WORK/h.mbps"
: >"$WORK/h.ratio"
for ((rep = 1; rep <= REPS; rep++)); do
	log "H rep $rep/$REPS: both links alone, ${T} s"
	bn_perf_start $((T + 30)) "$WORK/cable.out" -c 10.100.1.1:5201 -bind 10.100.1.2 -t "${T}s" -omit "${OMIT}s" -cc cubic
	pc=$BN_PID
	bn_perf_start $((T + 30)) "$WORK/dsl.out" -c 10.100.2.1:5201 -bind 10.100.2.2 -t "${T}s" -omit "${OMIT}s" -cc cubic
	pd=$BN_PID
	ok=1
	bn_perf_wait "$pc" "$WORK/cable.out" || ok=0
	bn_perf_wait "$pd" "$WORK/dsl.out" || ok=0
	[[ $ok == 1 ]] || continue
	sum=$(awk '/^RESULT/ { for (i = 1; i <= NF; i++) if ($i ~ /^mbps=/) { sub("mbps=", "", $i); s += $i } } END { printf "%.2f", s }' "$WORK/cable.out" "$WORK/dsl.out")
	log "H rep $rep/$REPS: the library, $H_BYTES"
	library "$TB_NS_S" "$TB_NS_C" 10.99.0.1:7350 10.100.1.2,10.100.2.2 "$H_BYTES" "$WORK/h.out" || continue
	mbps=$(field mbps "$WORK/h.out")
	paths=$(field paths "$WORK/h.out")
	ratio=$(awk -v a="$mbps" -v b="$sum" 'BEGIN { printf "%.2f", a / b }')
	echo "LIBRARY scenario=H paths=$paths mbps=$mbps sum_mbps=$sum ratio=$ratio lost=$(field lost "$WORK/h.out") shares=$(field shares "$WORK/h.out")"
	echo "$mbps" >>"$WORK/h.mbps"
	echo "$ratio" >>"$WORK/h.ratio"
done
if [[ -s $WORK/h.ratio ]]; then
	echo "LIBRARY scenario=H paths=2 mbps=$(bn_median <"$WORK/h.mbps") ratio=$(bn_median <"$WORK/h.ratio") reps=$(wc -l <"$WORK/h.ratio")"
fi
