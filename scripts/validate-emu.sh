#!/usr/bin/env bash
# validate-emu.sh: check that cmd/linkemu emulates what it is told to.
#
# Builds the emulator, sets up the testbed (scripts/lib/testbed.sh), then per
# link measures ping RTT and TCP goodput (iperf3) in both directions and
# prints them against the configured values; then checks cut/restore, random
# loss, and 2 × 100 Mbit/s bidirectional load. Needs root; prints SKIP and
# exits 0 otherwise. Exit status 1 if a measurement is out of tolerance.
#
# Environment: LINKEMU (use this binary instead of building), the testbed's
# CABLE_*/DSL_* variables, IPERF_TIME [10], VALIDATE_LOAD [1] (0 skips the
# 100 Mbit/s load test).
set -u
cd "$(dirname "$0")/.." || exit 1

if [[ $EUID -ne 0 ]]; then
	echo "SKIP: validate-emu.sh needs root (network namespaces, TUN)"
	exit 0
fi
for t in ip:iproute2 ping:iputils-ping iperf3:iperf3; do
	if ! command -v "${t%%:*}" >/dev/null; then
		apt-get install -y "${t#*:}" >/dev/null 2>&1 || { echo "SKIP: ${t%%:*} missing"; exit 0; }
	fi
done

TMPD=$(mktemp -d /tmp/validate-emu.XXXXXX)
if [[ -z ${LINKEMU:-} ]]; then
	LINKEMU=$TMPD/linkemu
	go build -o "$LINKEMU" ./cmd/linkemu || exit 1
fi
export LINKEMU
export TB_DIR=$TMPD
# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh

IPERF_PIDS=()
cleanup() {
	local p
	for p in "${IPERF_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	tb_teardown
	rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tb_setup "v$$" || exit 1
FAIL=0
C=$TB_NS_C
S=$TB_NS_S
T=${IPERF_TIME:-10}

# calc EXPR: floating-point arithmetic via awk.
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
# within X LO HI: true if LO <= X <= HI.
within() { awk "BEGIN { exit !($1 >= $2 && $1 <= $3) }"; }
# to_bps RATE, to_ms DURATION: the testbed's notations as numbers.
to_bps() { awk -v r="$1" 'BEGIN { m = 1; if (r ~ /gbit$/) m = 1e9; else if (r ~ /mbit$/) m = 1e6; else if (r ~ /kbit$/) m = 1e3; sub(/[a-z]+$/, "", r); printf "%d", r * m }'; }
to_ms() { awk -v d="$1" 'BEGIN { m = 1; if (d ~ /us$/) m = 0.001; else if (d ~ /ms$/) m = 1; else if (d ~ /s$/) m = 1000; sub(/[a-z]+$/, "", d); print d * m }'; }

# ping_avg NS ADDR COUNT: average RTT in ms.
ping_avg() { ip netns exec "$1" ping -q -c "$3" -i 0.1 -W 2 "$2" | awk -F/ '/^rtt/ { print $5 }'; }

# iperf_kbps NS ADDR PORT [ARGS]: receiver goodput lines in Kbit/s, one per stream direction.
iperf_kbps() {
	local ns=$1 addr=$2 port=$3
	shift 3
	ip netns exec "$ns" iperf3 -c "$addr" -p "$port" -t "$T" -f k "$@" |
		awk '/receiver/ { for (i = 2; i <= NF; i++) if ($i == "Kbits/sec") print $(i-1) }'
}

start_iperf_server() { # PORT
	ip netns exec "$S" iperf3 -s -D -p "$1" -I "$TMPD/iperf-$1.pid" || return 1
	sleep 0.3
	IPERF_PIDS+=("$(cat "$TMPD/iperf-$1.pid")")
}
start_iperf_server 5201 && start_iperf_server 5202 || { echo "FAIL: iperf3 server"; exit 1; }

# TCP goodput over a 1500-byte MTU is at most 1448/1500 of the IP rate
# (IPv4 20 + TCP 20 + timestamps 12 = 52 bytes of headers per packet).
TCP_EFF=$(calc "1448/1500")

printf '\n%-6s %-4s %10s %10s %6s | %8s %8s %6s\n' link dir "set rate" "goodput" ratio "set RTT" "meas RTT" ratio
declare -A LINKS=([cable]="10.100.1.1 5201 ${CABLE_RATE:-50mbit} ${CABLE_DELAY:-10ms}"
	[dsl]="10.100.2.1 5202 ${DSL_RATE:-20mbit} ${DSL_DELAY:-30ms}")
for link in cable dsl; do
	read -r addr port rate delay <<<"${LINKS[$link]}"
	set_rtt=$(calc "2 * $(to_ms "$delay")")
	rtt=$(ping_avg "$C" "$addr" 20)
	rtt_ratio=$(calc "${rtt:-0} / $set_rtt")
	within "$rtt_ratio" 0.999 1.05 || FAIL=1
	for dir in ab ba; do
		args=()
		[[ $dir == ba ]] && args=(-R)
		kbps=$(iperf_kbps "$C" "$addr" "$port" "${args[@]}" | sed -n 1p)
		bps=$(to_bps "$rate")
		ratio=$(calc "${kbps:-0} * 1000 / ($bps * $TCP_EFF)")
		within "$ratio" 0.95 1.01 || FAIL=1
		printf '%-6s %-4s %10s %8.2fM %6.3f | %6.1fms %6.2fms %6.3f\n' "$link" "$dir" "$rate" \
			"$(calc "${kbps:-0} / 1000")" "$ratio" "$set_rtt" "${rtt:-0}" "$rtt_ratio"
	done
done
echo "(goodput ratio = measured / (set rate × 1448/1500); RTT ratio = ping avg / (2 × delay))"

echo
echo "== cut / restore (cable)"
tb_ctl cable cut both
if ip netns exec "$C" ping -q -c 3 -i 0.2 -W 1 10.100.1.1 >/dev/null; then
	echo "FAIL: ping crossed a cut link"
	FAIL=1
else
	echo "ok: no ping crosses the cut link"
fi
tb_ctl cable stats | grep -E '^(ab|ba) enq' | sed 's/^/   /'
tb_ctl cable restore both
if ip netns exec "$C" ping -q -c 3 -i 0.2 -W 1 10.100.1.1 >/dev/null; then
	echo "ok: ping passes right after restore"
else
	echo "FAIL: ping after restore"
	FAIL=1
fi

echo
echo "== random loss 5% a->b (dsl), 1000 pings"
tb_ctl dsl set ab loss=5
loss=$(ip netns exec "$C" ping -q -c 1000 -i 0.005 -W 1 10.100.2.1 | awk '/packet loss/ { for (i = 1; i <= NF; i++) if ($i ~ /%$/) print $i + 0 }')
tb_ctl dsl set ab loss=0
# 1000 trials at p = 0.05: sigma = 0.69 %; accept 4 sigma.
if within "${loss:-0}" 2.2 7.8; then echo "ok: measured ${loss}% loss"; else echo "FAIL: measured ${loss}% loss"; FAIL=1; fi

if [[ ${VALIDATE_LOAD:-1} == 1 ]]; then
	echo
	echo "== load: both links at 100mbit, iperf3 --bidir on both at once (4 x 100 Mbit/s)"
	tb_ctl cable set both rate=100mbit queue=$((100000000 * 2 * 10 / 1000 / 8))
	tb_ctl dsl set both rate=100mbit queue=$((100000000 * 2 * 30 / 1000 / 8))
	cpu_before=$(for p in "${TB_PIDS[@]}"; do awk '{ print $14 + $15 }' "/proc/$p/stat"; done | paste -sd+ | bc)
	iperf_kbps "$C" 10.100.1.1 5201 --bidir >"$TMPD/load-cable" &
	a=$!
	iperf_kbps "$C" 10.100.2.1 5202 --bidir >"$TMPD/load-dsl" &
	b=$!
	sleep 1
	rtt_load=$(ip netns exec "$C" ping -q -c 20 -i 0.2 10.100.1.1 | awk -F/ '/^rtt/ { print $5 " avg, mdev " $7 }')
	wait "$a" "$b"
	cpu_after=$(for p in "${TB_PIDS[@]}"; do awk '{ print $14 + $15 }' "/proc/$p/stat"; done | paste -sd+ | bc)
	expect=$(calc "100000 * $TCP_EFF")
	for link in cable dsl; do
		i=0
		for dir in ab ba; do
			i=$((i + 1))
			kbps=$(sed -n "${i}p" "$TMPD/load-$link")
			ratio=$(calc "${kbps:-0} / $expect")
			within "$ratio" 0.85 1.01 || FAIL=1
			printf '%-6s %-4s 100mbit %8.2fM ratio %.3f\n' "$link" "$dir" "$(calc "${kbps:-0} / 1000")" "$ratio"
		done
	done
	echo "cable ping under load (ms, includes queueing): $rtt_load"
	echo "emulator CPU: $(calc "($cpu_after - $cpu_before) / $(getconf CLK_TCK) / $T * 100")% of one core (both emulators)"
fi

echo
if [[ $FAIL == 0 ]]; then echo "PASS"; else echo "FAIL"; fi
exit "$FAIL"
