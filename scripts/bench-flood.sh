#!/usr/bin/env bash
# bench-flood.sh: bondtun under attack (docs/SECURITY.md).
#
# In the two-namespace testbed of scenario H (scripts/lib/testbed.sh), plus an attacker
# namespace bta-SFX with its own unshaped veth to the server (10.100.9.2 ↔ 10.100.9.1, and
# 256 flood sources 10.101.0.0-10.101.0.255), one bonded download through the tunnel
# (btperf -reverse, FLOOD_T s) runs FLOOD_REPS times in each of three conditions,
# interleaved:
#   none        no attack;
#   datagrams   FLOOD_DGRAM_RATE datagrams per second at the server's data port: half
#               forged (the session's receiver index and real path ids, random bytes: each
#               costs an AEAD open), half genuine datagrams captured on the server's cable
#               link beforehand and replayed (each opens, then the replay window drops it);
#   handshakes  FLOOD_HS_RATE TCP connections per second to the control port from the 256
#               sources, half slow-loris TLS (5 bytes of a record header, then silence), half
#               64 bytes of garbage; 2 s into it a second configured client ("client2",
#               from the attacker namespace's own address, which the server has not seen
#               before the first repetition) starts `bondtun up`, and the time until its
#               first ping through its tunnel answers is real_peer_connect_ms;
#   rekey       the client restarted with BONDTUN_DEBUG_REKEY_INTERVAL=FLOOD_REKEY_INTERVAL
#               (docs/STATUS.md "Debug knobs"), so that it updates the session's keys every
#               second during the download and the server follows (restarted back after
#               the run, outside the measured window).
# Every download prints 0.5 s interval rates; min_interval_ratio is the slowest interval
# after the omit period over the run's median interval (1.00: no dip), median over reps.
# For each condition: the median goodput and its ratio to "none", the server process's
# CPU (user + system, % of one core, median), and what the server counted. peers_created
# counts sessions the server established during the floods other than client2's: anything
# but 0 would be a break of the handshake's authentication.
#
# Output on stdout, one line per run, then
#   FLOOD kind=none|datagrams|handshakes|rekey ratio=… server_cpu_pct=… peers_created=… goodput_mbps=… min_interval_ratio=… goal=met|missed
#   FLOOD kind=handshakes real_peer_connect_ms=… reps_ms=… goal=met|missed
# real_peer_connect_ms is the median over the repetitions, reps_ms each one (the first from
# a source the server had not seen). goal: ratio ≥ 0.95 (datagrams, rekey) or ≥ 0.90
# (handshakes) with no peer created; a real peer connected within 2 s.
# FLOOD_KINDS [none datagrams handshakes rekey] picks the conditions (none always runs).
# Bounded: about 2 min after the build with the defaults; every process it starts is ended by
# PID, and its namespaces are deleted on exit. Needs root (otherwise prints SKIP).
# Environment: FLOOD_REPS [3], FLOOD_T [6] download seconds, FLOOD_DGRAM_RATE [100000],
# FLOOD_HS_RATE [1000], FLOOD_REKEY_INTERVAL [1s], BIN [build into a temporary dir].
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

REPS=${FLOOD_REPS:-3}
T=${FLOOD_T:-6}
DGRAM_RATE=${FLOOD_DGRAM_RATE:-100000}
HS_RATE=${FLOOD_HS_RATE:-1000}
REKEY_INTERVAL=${FLOOD_REKEY_INTERVAL:-1s}
KINDS=${FLOOD_KINDS:-datagrams handshakes rekey}
KINDS="none ${KINDS//none/}"
[[ $REPS =~ ^[1-9]$ && $T =~ ^[1-9][0-9]?$ ]] || { echo "FLOOD_REPS 1-9, FLOOD_T 1-99" >&2; exit 2; }

if [[ $(id -u) -ne 0 ]]; then
	echo "SKIP bench-flood.sh: needs root (network namespaces, TUN devices)"
	exit 0
fi

# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
tb_scenario H

log() { printf '[flood] %s\n' "$*" >&2; }

SFX=fl$$
NS_A=bta-$SFX
WORK=$(mktemp -d /tmp/bondtun-flood.XXXXXX)
PIDS=()
cleanup() {
	tb_cleanup # ends PIDS, deletes the testbed's namespaces and WORK
	ip netns del "$NS_A" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${BIN:-} ]]; then
	BIN=$WORK/bin
	log "building into $BIN"
	# shellcheck source=lib/version.sh
	source scripts/lib/version.sh
	bt_build -o "$BIN/" ./cmd/bondtun ./cmd/linkemu ./cmd/btperf ./cmd/btflood
fi

TB_DIR=$WORK
LINKEMU=$BIN/linkemu
tb_setup "$SFX" 2>"$WORK/testbed.log" || { cat "$WORK/testbed.log" >&2; exit 1; }
C=(ip netns exec "$TB_NS_C")
S=(ip netns exec "$TB_NS_S")
A=(ip netns exec "$NS_A")

# The attacker's namespace and link (no emulator: the attack is not shaped).
ip netns add "$NS_A"
ip -n "$NS_A" link set lo up
ip link add att0 netns "$NS_A" type veth peer name att-s netns "$TB_NS_S"
ip -n "$NS_A" addr add 10.100.9.2/24 dev att0
ip -n "$NS_A" link set att0 up
ip -n "$TB_NS_S" addr add 10.100.9.1/24 dev att-s
ip -n "$TB_NS_S" link set att-s up
ip -n "$TB_NS_S" route add 10.101.0.0/24 via 10.100.9.2
ip -n "$NS_A" route add 10.99.0.1/32 via 10.100.9.1
for i in $(seq 0 255); do echo "addr add 10.101.0.$i/32 dev att0"; done | ip -n "$NS_A" -batch -

# Configs: the demo pair, plus client2 in the attacker namespace (a peer the server knows).
chmod 600 configs/server.yaml configs/client.yaml
K2=$("$BIN/bondtun" genkey)
P2=$(printf '%s\n' "$K2" | "$BIN/bondtun" pubkey)
SRV_PUB=$(sed -n 's/^ *public_key: "\(.*\)".*/\1/p' configs/client.yaml | head -n 1)
cp configs/server.yaml "$WORK/server.yaml"
cat >>"$WORK/server.yaml" <<EOF
  - name: client2
    public_key: "$P2"
    allowed_ips: [10.77.0.3/32]
EOF
cat >"$WORK/client2.yaml" <<EOF
version: 1
log_level: info
private_key: "$K2"
tun:
  name: bt1
  addresses: [10.77.0.3/24]
uplinks:
  - name: veth
    interface: att0
    address: 10.100.9.2
    gateway: 10.100.9.1
peers:
  - name: server
    public_key: "$SRV_PUB"
    endpoint: 10.99.0.1:7350
    allowed_ips: [10.77.0.0/24]
EOF
chmod 600 "$WORK/server.yaml" "$WORK/client2.yaml"

"${S[@]}" "$BIN/btperf" server -l 0.0.0.0:5201 >"$WORK/btperf.log" 2>&1 &
PIDS+=($!)
"${S[@]}" "$BIN/bondtun" up -c "$WORK/server.yaml" 2>"$WORK/server.log" &
SRV=$!
PIDS+=("$SRV")
sleep 0.3
# start_client [VAR=VALUE...]: (re)start the client, with the environment given, and wait for
# the tunnel.
CLI=
start_client() {
	local i
	if [[ -n $CLI ]]; then
		tb_stop "$CLI"
		"${C[@]}" "$BIN/bondtun" down -c configs/client.yaml >/dev/null 2>&1 || true
	fi
	"${C[@]}" env "$@" "$BIN/bondtun" up -c configs/client.yaml 2>>"$WORK/client.log" &
	CLI=$!
	PIDS+=("$CLI")
	for ((i = 0; i < 50; i++)); do
		timeout 2 "${C[@]}" ping -c1 -W0.3 10.77.0.1 >/dev/null 2>&1 && break
		sleep 0.2
	done
	((i < 50)) || { log "the tunnel did not come up"; tail -n 20 "$WORK/server.log" "$WORK/client.log" >&2; exit 1; }
	sleep 1
}
start_client

status() { "${S[@]}" "$BIN/bondtun" status -c "$WORK/server.yaml" -json 2>/dev/null; }
# counter NAME: the sum of a counter over the server's status JSON.
counter() { status | grep -o "\"$1\":[0-9]*" | awk -F: '{ s += $2 } END { print s + 0 }'; }
# aim: the client's session's receiver index at the server, and genuine datagrams of that
# session to replay, captured on the server's cable link while pings flow. Again before each
# datagram flood after the client restarted (kind rekey restarts it twice): a new session
# has a new index, and forgeries or replays with the old one are dropped unopened.
AIMED=
aim() {
	INDEX=$(status | grep -o '"peer":"client","cipher":"[^"]*","receiver_index":[0-9]*' | sed 's/.*://')
	[[ -n $INDEX ]] || { log "no receiver index in the server's status"; exit 1; }
	[[ $INDEX == "$AIMED" ]] && return 0
	"${S[@]}" "$BIN/btflood" capture -i link0 -port 7350 -n 256 -t 3s -o "$WORK/replay.hex" >"$WORK/capture.out" &
	cap=$!
	PIDS+=("$cap")
	"${C[@]}" ping -q -c 150 -i 0.01 10.77.0.1 >/dev/null 2>&1 || true
	wait "$cap" || true
	tb_forget "$cap"
	log "$(cat "$WORK/capture.out"), server receiver index $INDEX"
	[[ -s $WORK/replay.hex ]] || { log "nothing captured"; exit 1; }
	AIMED=$INDEX
}
aim

ticks() { awk '{ print $14 + $15 }' "/proc/$SRV/stat"; }
HZ=$(getconf CLK_TCK)
established() { grep -c 'session established' "$WORK/server.log" || true; }
established2() { grep 'session established' "$WORK/server.log" | grep -c 'peer=client2' || true; }

# run KIND REP: one download under KIND; appends "mbps cpu created" to $WORK/KIND.reps.
run() {
	local kind=$1 rep=$2 fl="" t0 c0 t1 c1 e0 e1 f0 f1 mbps cpu created extra="" n0 n1 peer2 cli2="" dip
	[[ $kind == rekey ]] && start_client BONDTUN_DEBUG_REKEY_INTERVAL="$REKEY_INTERVAL"
	e0=$(established)
	f0=$(established2)
	case $kind in
	datagrams)
		aim
		n0="$(counter rx_auth_fail) $(counter rx_replay)"
		"${A[@]}" "$BIN/btflood" datagrams -c 10.99.0.1:7350 -bind 10.100.9.2 -index "$INDEX" -paths 0,16 \
			-rate "$DGRAM_RATE" -t "$((T + 1))s" -replay "$WORK/replay.hex" >"$WORK/flood-$kind-$rep.out" 2>&1 &
		fl=$!
		;;
	rekey)
		n0="$(counter key_updates) $(counter rx_auth_fail) $(counter rx_prev_key)"
		;;
	handshakes)
		n0="$(counter handshakes_refused) $(counter handshakes_preempted) $(counter handshakes_failed)"
		"${A[@]}" "$BIN/btflood" handshakes -c 10.99.0.1:7350 -sources 10.101.0.0-10.101.0.255 \
			-rate "$HS_RATE" -t "$((T + 1))s" >"$WORK/flood-$kind-$rep.out" 2>&1 &
		fl=$!
		;;
	esac
	[[ -n $fl ]] && { PIDS+=("$fl"); sleep 0.5; }
	t0=$(date +%s.%N)
	c0=$(ticks)
	timeout -k 2 $((T + 20)) "${C[@]}" "$BIN/btperf" client -c 10.77.0.1:5201 -reverse -t "${T}s" -omit 1s -i 0.5s \
		>"$WORK/btperf-$kind-$rep.out" 2>&1 &
	local bp=$!
	PIDS+=("$bp")
	if [[ $kind == handshakes ]]; then
		# A peer connecting during the flood: from bondtun up to the first ping answered.
		sleep 1.5
		local s0 ms=none
		s0=$(date +%s%N)
		"${A[@]}" "$BIN/bondtun" up -c "$WORK/client2.yaml" 2>>"$WORK/client2.log" &
		cli2=$!
		PIDS+=("$cli2")
		for ((i = 0; i < 80; i++)); do
			if timeout 1 "${A[@]}" ping -c1 -W0.05 -I bt1 10.77.0.1 >/dev/null 2>&1; then
				ms=$(($(date +%s%N) / 1000000 - s0 / 1000000))
				break
			fi
			sleep 0.02
		done
		((rep == 1)) && peer2="new source" || peer2="known source"
		extra=" real_peer_connect_ms=$ms ($peer2)"
		echo "$ms" >>"$WORK/connect.reps"
	fi
	wait "$bp" || true
	tb_forget "$bp"
	c1=$(ticks)
	t1=$(date +%s.%N)
	[[ -n $fl ]] && { wait "$fl" || true; tb_forget "$fl"; }
	[[ -n $cli2 ]] && {
		tb_stop "$cli2"
		"${A[@]}" "$BIN/bondtun" down -c "$WORK/client2.yaml" >/dev/null 2>&1 || true
	}
	e1=$(established)
	f1=$(established2)
	created=$((e1 - e0 - (f1 - f0)))
	mbps=$(sed -n 's/^RESULT mbps=\([0-9.]*\).*/\1/p' "$WORK/btperf-$kind-$rep.out")
	[[ -n $mbps ]] || mbps=0
	cpu=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$HZ" 'BEGIN { printf "%.1f", (b - a) / hz / (e - s) * 100 }')
	# The slowest 0.5 s interval ending after the omit period (the last, partial one left
	# out) over the median interval.
	dip=$(sed -n 's/^t=\([0-9.]*\) mbps=\([0-9.]*\).*/\1 \2/p' "$WORK/btperf-$kind-$rep.out" |
		awk -v t="$T" '$1 > 1.4 && $1 <= t + 0.01 { print $2 }' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0 || v[int((NR + 1) / 2)] == 0) print 0; else printf "%.2f", v[1] / v[int((NR + 1) / 2)] }')
	case $kind in
	rekey)
		read -r k0 a0 p0 <<<"$n0"
		extra=" key_updates=$(($(counter key_updates) - k0)) rx_auth_fail=$(($(counter rx_auth_fail) - a0)) rx_prev_key=$(($(counter rx_prev_key) - p0))"
		start_client
		;;
	datagrams)
		read -r a0 r0 <<<"$n0"
		extra=" rx_auth_fail=$(($(counter rx_auth_fail) - a0)) rx_replay=$(($(counter rx_replay) - r0)) $(sed -n 's/^FLOODER kind=datagrams //p' "$WORK/flood-$kind-$rep.out")"
		;;
	handshakes)
		read -r h0 p0 x0 <<<"$n0"
		extra+=" refused=$(($(counter handshakes_refused) - h0)) preempted=$(($(counter handshakes_preempted) - p0)) failed=$(($(counter handshakes_failed) - x0)) $(sed -n 's/^FLOODER kind=handshakes //p' "$WORK/flood-$kind-$rep.out")"
		;;
	esac
	echo "RUN kind=$kind rep=$rep goodput_mbps=$mbps server_cpu_pct=$cpu peers_created=$created min_interval_ratio=$dip$extra"
	echo "$mbps $cpu $created $dip" >>"$WORK/$kind.reps"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "none"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for ((r = 1; r <= REPS; r++)); do
	for kind in $KINDS; do
		log "rep $r/$REPS: $kind"
		run "$kind" "$r"
		sleep 1
	done
done

base=$(awk '{ print $1 }' "$WORK/none.reps" | median)
for kind in $KINDS; do
	g=$(awk '{ print $1 }' "$WORK/$kind.reps" | median)
	c=$(awk '{ print $2 }' "$WORK/$kind.reps" | median)
	p=$(awk '{ s += $3 } END { print s + 0 }' "$WORK/$kind.reps")
	d=$(awk '{ print $4 }' "$WORK/$kind.reps" | median)
	ratio=$(awk -v g="$g" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", g / b; else print "none" }')
	# The issue's goals: ratio ≥ 0.95 for datagrams and rekey, ≥ 0.90 for handshakes.
	goal=$(awk -v k="$kind" -v r="$ratio" -v p="$p" 'BEGIN {
		want = (k == "handshakes") ? 0.90 : 0.95
		if (k == "none") print "-"; else if (r != "none" && r + 0 >= want && p == 0) print "met"; else print "missed"
	}')
	echo "FLOOD kind=$kind ratio=$ratio server_cpu_pct=$c peers_created=$p goodput_mbps=$g min_interval_ratio=$d goal=$goal"
done
if [[ -s $WORK/connect.reps ]]; then
	# The median over the repetitions (a failed connect counts as 99999 ms); each one after.
	m=$(sed 's/none/99999/' "$WORK/connect.reps" | median)
	goal=$(awk -v m="$m" 'BEGIN { print (m + 0 <= 2000) ? "met" : "missed" }')
	echo "FLOOD kind=handshakes real_peer_connect_ms=$m reps_ms=$(paste -sd, "$WORK/connect.reps") goal=$goal"
fi
