#!/usr/bin/env bash
# e2e.sh: end-to-end test of the real binaries over the emulated testbed.
#
# Builds nothing: BIN (default ./bin) must hold bondtun, linkemu and btperf.
# Creates the two-uplink topology of scripts/lib/testbed.sh, runs `bondtun up`
# in the server and client namespaces, then checks:
#   - ping through the tunnel;
#   - a verified TCP transfer each way (btperf -verify);
#   - both uplinks carried tunnel traffic;
#   - SIGTERM removes the device, routes and rules;
#   - after a SIGKILL, `bondtun down` removes the leftovers.
# Prints "E2E key=value" lines, exits non-zero on the first failed check.
# Needs root; cleans up everything it made, also when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./bin}
BYTES=${E2E_BYTES:-30000000}

# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
SFX=e2e$$
WORK=$(mktemp -d /tmp/bondtun-e2e.XXXXXX)
PIDS=()
fail() {
	echo "E2E FAIL: $*" >&2
	for f in "$WORK"/*.log; do
		echo "--- $f" >&2
		tail -n 30 "$f" >&2
	done
	exit 1
}
cleanup() {
	set +e
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	tb_teardown
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TB_DIR=$WORK LINKEMU=$BIN/linkemu tb_setup "$SFX" 2>"$WORK/testbed.log" || fail "testbed setup"
C="ip netns exec $TB_NS_C"
S="ip netns exec $TB_NS_S"

start_client() {
	$C "$BIN/bondtun" up -c configs/client.yaml 2>>"$WORK/client.log" &
	CLIENT=$!
	PIDS+=("$CLIENT")
}
wait_tunnel() {
	local i
	for ((i = 0; i < 100; i++)); do
		$C ping -c1 -W1 10.77.0.1 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
leftovers() { # prints what bondtun left in the client namespace
	$C ip link show bt0 2>/dev/null | head -1
	$C ip rule show | grep -E 'proto (183|0xb7)' || true
	$C ip route show table all | grep -E 'proto (183|0xb7)' || true
}

$S "$BIN/bondtun" up -c configs/server.yaml 2>"$WORK/server.log" &
PIDS+=($!)
$S "$BIN/btperf" server -l 0.0.0.0:5201 >"$WORK/btperf.log" 2>&1 &
PIDS+=($!)
sleep 0.3
start_client
wait_tunnel || fail "tunnel did not come up"

loss=$($C ping -c 20 -i 0.05 10.77.0.1 | sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p')
echo "E2E ping_loss_pct=$loss"
[[ $loss == 0 ]] || fail "ping loss $loss%"

rx() { $C cat "/sys/class/net/$1/statistics/rx_bytes"; }
tx() { $C cat "/sys/class/net/$1/statistics/tx_bytes"; }
before=($(rx up0) $(rx up1) $(tx up0) $(tx up1))
for dir in down up; do
	flag=
	[[ $dir == down ]] && flag=-reverse
	out=$($C "$BIN/btperf" client -c 10.77.0.1:5201 $flag -bytes "$BYTES" -verify -t 60s 2>&1) || fail "transfer $dir: $out"
	res=$(grep '^RESULT' <<<"$out")
	echo "E2E transfer_$dir ${res#RESULT }"
	grep -q 'verified=yes' <<<"$res" || fail "transfer $dir not verified: $res"
done
after=($(rx up0) $(rx up1) $(tx up0) $(tx up1))
names=(cable_rx dsl_rx cable_tx dsl_tx)
for i in 0 1 2 3; do
	d=$((after[i] - before[i]))
	echo "E2E ${names[i]}_bytes=$d"
	((d > 500000)) || fail "${names[i]} carried only $d bytes of tunnel traffic"
done
$C "$BIN/bondtun" status -c configs/client.yaml -json >"$WORK/status.json" || fail "status"
echo "E2E status_bytes=$(wc -c <"$WORK/status.json")"

kill -TERM "$CLIENT"
wait "$CLIENT" || fail "client exited with status $? on SIGTERM"
left=$(leftovers)
[[ -z $left ]] || fail "left behind after SIGTERM: $left"
echo "E2E clean_exit=yes"

start_client
wait_tunnel || fail "tunnel did not come up the second time"
kill -KILL "$CLIENT"
wait "$CLIENT" 2>/dev/null || true
[[ -n $(leftovers) ]] || fail "expected leftovers after SIGKILL (test is not testing anything)"
$C "$BIN/bondtun" down -c configs/client.yaml >/dev/null || fail "bondtun down"
left=$(leftovers)
[[ -z $left ]] || fail "left behind after bondtun down: $left"
echo "E2E crash_cleanup=yes"
echo "E2E PASS"
