#!/usr/bin/env bash
# demo.sh: bondtun's local demo, from a fresh machine to a result table.
#
#   client namespace                                  server namespace
#   +-----------------+   cable 50 Mbit/s, 10 ms   +------------------+
#   | bondtun up      |============================| bondtun up       |
#   | (client.yaml)   |   DSL 20 Mbit/s, 30 ms     | (server.yaml)    |
#   | bt0 10.77.0.2   |============================| bt0 10.77.0.1    |
#   +-----------------+   (userspace emulator)     +------------------+
#
# It installs what it needs (Debian packages), builds the binaries, measures
# each emulated link alone with one TCP download, then runs the real client
# and server, downloads through the tunnel for DEMO_T seconds with live
# progress, and prints a table. It removes everything it made on exit, also
# when interrupted. Run as root.
#
# Environment: DEMO_T (seconds per measurement, default 10), CABLE_RATE,
# CABLE_DELAY, DSL_RATE, DSL_DELAY, DSL_LOSS (see scripts/lib/testbed.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${DEMO_T:-10}

if [[ $(id -u) -ne 0 ]]; then
	echo "demo.sh: run as root (it creates network namespaces and TUN devices)" >&2
	exit 1
fi
scripts/setup.sh
# shellcheck source=lib/version.sh
source scripts/lib/version.sh
make_bins() { bt_build -o bin/ ./cmd/bondtun ./cmd/linkemu ./cmd/btperf; }
echo "== building" >&2
make_bins

# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
SFX=demo$$
WORK=$(mktemp -d /tmp/bondtun-demo.XXXXXX)
PIDS=()
tb_cleanup_on_exit

echo "== building the testbed (emulated cable and DSL)" >&2
TB_DIR=$WORK LINKEMU=./bin/linkemu tb_setup "$SFX"
C="ip netns exec $TB_NS_C"
S="ip netns exec $TB_NS_S"

$S ./bin/btperf server -l 0.0.0.0:5201 >"$WORK/btperf-server.log" 2>&1 &
PIDS+=($!)
sleep 0.3

# monitor LABEL: every second, print what each emulated link delivered to the
# client namespace (live progress while a download runs in the foreground).
monitor() {
	local label=$1 a b a0 b0 t=0
	a0=$($C cat /sys/class/net/up0/statistics/rx_bytes)
	b0=$($C cat /sys/class/net/up1/statistics/rx_bytes)
	while sleep 1; do
		t=$((t + 1))
		a=$($C cat /sys/class/net/up0/statistics/rx_bytes) || return
		b=$($C cat /sys/class/net/up1/statistics/rx_bytes) || return
		awk -v l="$label" -v t=$t -v a=$((a - a0)) -v b=$((b - b0)) \
			'BEGIN { printf "  %-7s t=%2ds  cable %5.1f Mbit/s  dsl %5.1f Mbit/s  total %5.1f Mbit/s\n", l, t, a*8/1e6, b*8/1e6, (a+b)*8/1e6 }' >&2
		a0=$a b0=$b
	done
}

# download SRC DST LABEL: one TCP download (server sends) from DST's btperf,
# with live progress; echoes the goodput in Mbit/s.
download() {
	local src=$1 dst=$2 label=$3 out mon
	monitor "$label" &
	mon=$!
	out=$($C ./bin/btperf client -c "$dst:5201" -bind "$src" -reverse -t "${T}s" -omit 2s -cc cubic) || true
	kill "$mon" 2>/dev/null
	wait "$mon" 2>/dev/null || true
	sed -n 's/^RESULT mbps=\([0-9.]*\).*/\1/p' <<<"$out"
}

echo "== each link alone (${T} s TCP download each)" >&2
cable=$(download 10.100.1.2 10.100.1.1 cable)
dsl=$(download 10.100.2.2 10.100.2.1 dsl)

echo "== starting bondtun server and client" >&2
# `bondtun up` refuses a private key that group or others can read (docs/SECURITY.md).
chmod 600 configs/server.yaml configs/client.yaml
$S ./bin/bondtun up -c configs/server.yaml 2>"$WORK/server.log" &
PIDS+=($!)
sleep 0.3
$C ./bin/bondtun up -c configs/client.yaml 2>"$WORK/client.log" &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
	$C ping -c1 -W1 10.77.0.1 >/dev/null 2>&1 && break
	sleep 0.1
done
if ! $C ping -c1 -W1 10.77.0.1 >/dev/null 2>&1; then
	echo "demo.sh: the tunnel did not come up; logs:" >&2
	cat "$WORK/server.log" "$WORK/client.log" >&2
	exit 1
fi
rtt=$($C ping -c5 -i0.2 10.77.0.1 | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
echo "== tunnel up (ping 10.77.0.1: ${rtt} ms); ${T} s TCP download through it" >&2

rx0() { $C cat /sys/class/net/up0/statistics/rx_bytes; }
rx1() { $C cat /sys/class/net/up1/statistics/rx_bytes; }
a0=$(rx0) b0=$(rx1)
tunnel=$(download 10.77.0.2 10.77.0.1 tunnel)
a1=$(rx0) b1=$(rx1)
cable_share=$(awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) 'BEGIN { printf "%.0f", (a+b) ? 100*a/(a+b) : 0 }')

sum=$(awk -v a="$cable" -v b="$dsl" 'BEGIN { printf "%.1f", a + b }')
share=$(awk -v t="$tunnel" -v s="$sum" 'BEGIN { printf "%.0f", s ? 100 * t / s : 0 }')
echo
echo "| path                 | TCP download (Mbit/s) |"
echo "|----------------------|----------------------:|"
printf '| cable alone          | %21.1f |\n' "$cable"
printf '| DSL alone            | %21.1f |\n' "$dsl"
printf '| sum of the links     | %21.1f |\n' "$sum"
printf '| bondtun tunnel       | %21.1f |\n' "$tunnel"
printf '| tunnel / sum         | %20s%% |\n' "$share"
echo
echo "Tunnel bytes received per link: cable ${cable_share}%, DSL $((100 - cable_share))%."
echo "RESULT cable=$cable dsl=$dsl sum=$sum tunnel=$tunnel share=$share"
