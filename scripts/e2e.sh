#!/usr/bin/env bash
# e2e.sh: end-to-end test of the real binaries over the emulated testbed.
#
# Builds nothing: BIN (default ./bin) must hold bondtun, linkemu and btperf.
# Creates the two-uplink topology of scripts/lib/testbed.sh, runs `bondtun up`
# in the server and client namespaces, then checks:
#   - ping through the tunnel;
#   - a verified TCP transfer each way (btperf -verify);
#   - both uplinks carried tunnel traffic;
#   - a cable cut in the middle of a verified transfer: it completes intact, and the
#     control channel moves to the DSL without a new session;
#   - the cable's address removed and re-added: the cable carries traffic again;
#   - the cable's address changed (renumbering; the server sees a new outer address):
#     the cable carries traffic again, without a restart;
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
tb_cleanup_on_exit

TB_DIR=$WORK LINKEMU=$BIN/linkemu tb_setup "$SFX" 2>"$WORK/testbed.log" || fail "testbed setup"
C="ip netns exec $TB_NS_C"
TB_CTL_cable_cmd="$BIN/linkemu ctl $TB_CTL_cable"
S="ip netns exec $TB_NS_S"

# The client config names only the uplinks' interfaces, so the uplinks follow their
# addresses (as with DHCP): the renumbering check below needs that.
sed '/^    address:/d' configs/client.yaml >"$WORK/client.yaml"
# `bondtun up` refuses a private key that group or others can read (docs/SECURITY.md).
chmod 600 "$WORK/client.yaml" configs/server.yaml
start_client() {
	$C "$BIN/bondtun" up -c "$WORK/client.yaml" 2>>"$WORK/client.log" &
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
# cable_carries LABEL: a 3 s download must move > 500 kB over the cable.
cable_carries() {
	local a0 a1 ok=no i
	for ((i = 0; i < 30; i++)); do # give the path up to 3 s to come back
		a0=$(rx up0)
		$C "$BIN/btperf" client -c 10.77.0.1:5201 -reverse -t 1s >/dev/null 2>&1 || true
		a1=$(rx up0)
		if ((a1 - a0 > 500000)); then
			ok=yes
			break
		fi
	done
	echo "E2E $1=$ok"
	[[ $ok == yes ]] || fail "$1: the cable carries no tunnel traffic"
}

# A cable cut in the middle of a verified download.
(sleep 2 && $TB_CTL_cable_cmd cut both) &
cutter=$!
out=$($C "$BIN/btperf" client -c 10.77.0.1:5201 -reverse -bytes 40000000 -verify -t 60s 2>&1) || fail "transfer across a cut: $out"
wait "$cutter" || true
grep -q 'verified=yes' <<<"$out" || fail "transfer across a cut not verified: $out"
echo "E2E cut_transfer ${out##*RESULT }"
# The control channel rode the cable: the client must have moved it to the DSL and kept its
# session (one "session established", one "control channel resumed").
grep -q 'control channel resumed' "$WORK/client.log" || fail "control channel not resumed after the cut"
sessions=$(grep -c 'session established' "$WORK/client.log" || true)
[[ $sessions == 1 ]] || fail "the client opened $sessions sessions across the cut"
echo "E2E control_resumed=yes sessions=$sessions"
$TB_CTL_cable_cmd restore both >/dev/null
cable_carries cable_after_restore

# The cable's address removed, then added again.
$C ip addr del 10.100.1.2/24 dev up0
sleep 0.5
$C ip addr add 10.100.1.2/24 dev up0
cable_carries cable_after_readd

# The cable's address changes (renumbering): the client rebinds, the server follows.
$C ip addr del 10.100.1.2/24 dev up0
$C ip addr add 10.100.1.3/24 dev up0
cable_carries cable_after_renumber
$C ip addr del 10.100.1.3/24 dev up0
$C ip addr add 10.100.1.2/24 dev up0
cable_carries cable_after_renumber_back

$C "$BIN/bondtun" status -c "$WORK/client.yaml" -json >"$WORK/status.json" || fail "status"
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
$C "$BIN/bondtun" down -c "$WORK/client.yaml" >/dev/null || fail "bondtun down"
left=$(leftovers)
[[ -z $left ]] || fail "left behind after bondtun down: $left"
echo "E2E crash_cleanup=yes"
echo "E2E PASS"
