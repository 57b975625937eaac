# shellcheck shell=bash
# speed.sh: helpers of scripts/bench-speed.sh — the one-veth topology, the two
# tunnels (wireguard-go and bondtun) on it, CPU accounting and medians.
# Source it, set the variables below, call sp_setup ... sp_teardown. Root only.
#
#   namespace spc-$SFX (client)                    namespace sps-$SFX (server)
#   +----------------------------+     veth      +----------------------------+
#   | vc$SFX 10.201.0.2/24       |<=============>| vs$SFX 10.201.0.1/24       |
#   | wgc$SFX 10.78.0.2/24 (wg)  |               | wgs$SFX 10.78.0.1/24 (wg)  |
#   | btc$SFX 10.77.0.2/24 (bt)  |               | bts$SFX 10.77.0.1/24 (bt)  |
#   +----------------------------+               +----------------------------+
#
# Inputs: SP_SFX (unique suffix, e.g. $$), SP_BIN (bondtun, btperf,
# wireguard-go, wgkey), SP_WORK (scratch directory, logs and configs).
# After sp_setup: SP_NS_C, SP_NS_S; after sp_start_wg / sp_start_bondtun:
# SP_WG_PIDS, SP_BT_PIDS (both ends). SP_PIDS lists every process started.

SP_PIDS=()
SP_WG_PIDS=()
SP_BT_PIDS=()

sp_log() { printf '[speed] %s\n' "$*" >&2; }

# sp_setup: create both namespaces and the veth pair between them.
sp_setup() {
	SP_NS_C=spc-$SP_SFX
	SP_NS_S=sps-$SP_SFX
	ip netns add "$SP_NS_C" || return 1
	ip netns add "$SP_NS_S" || return 1
	ip link add "vc$SP_SFX" type veth peer name "vs$SP_SFX" || return 1
	ip link set "vc$SP_SFX" netns "$SP_NS_C" || return 1
	ip link set "vs$SP_SFX" netns "$SP_NS_S" || return 1
	ip -n "$SP_NS_C" addr add 10.201.0.2/24 dev "vc$SP_SFX" &&
		ip -n "$SP_NS_S" addr add 10.201.0.1/24 dev "vs$SP_SFX" &&
		ip -n "$SP_NS_C" link set lo up && ip -n "$SP_NS_S" link set lo up &&
		ip -n "$SP_NS_C" link set "vc$SP_SFX" up && ip -n "$SP_NS_S" link set "vs$SP_SFX" up
}

# sp_wait_for PID TEST...: wait up to 5 s until TEST succeeds while PID lives.
sp_wait_for() {
	local pid=$1 i
	shift
	for ((i = 0; i < 100; i++)); do
		"$@" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || { sp_log "process $pid exited"; return 1; }
		sleep 0.05
	done
	sp_log "timeout waiting for: $*"
	return 1
}

# sp_ping DST: wait up to 10 s until DST answers a ping from the client.
sp_ping() {
	local i
	for ((i = 0; i < 50; i++)); do
		ip netns exec "$SP_NS_C" ping -c1 -W1 "$1" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	sp_log "no ping answer from $1"
	return 1
}

# sp_wg_end NS DEV ADDR PRIV_HEX LISTEN_PORT PEER_PUB ENDPOINT ALLOWED: start
# wireguard-go in the foreground in NS and configure it over its UAPI socket.
sp_wg_end() {
	local ns=$1 dev=$2 addr=$3 priv=$4 port=$5 pub=$6 ep=$7 allowed=$8 pid
	ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error \
		"$SP_BIN/wireguard-go" -f "$dev" >"$SP_WORK/$dev.log" 2>&1 &
	pid=$!
	SP_PIDS+=("$pid")
	SP_WG_PIDS+=("$pid")
	sp_wait_for "$pid" test -S "/var/run/wireguard/$dev.sock" || return 1
	{
		echo set=1
		echo "private_key=$priv"
		[[ $port != - ]] && echo "listen_port=$port"
		echo replace_peers=true
		echo "public_key=$pub"
		[[ $ep != - ]] && echo "endpoint=$ep"
		echo replace_allowed_ips=true
		echo "allowed_ip=$allowed"
	} | "$SP_BIN/wgkey" uapi "/var/run/wireguard/$dev.sock" || return 1
	ip -n "$ns" addr add "$addr" dev "$dev" &&
		ip -n "$ns" link set "$dev" mtu 1420 up
}

# sp_start_wg: a wireguard-go tunnel 10.78.0.2 <-> 10.78.0.1 over the veth.
sp_start_wg() {
	local s c
	read -r -a s < <("$SP_BIN/wgkey" genkey) || return 1
	read -r -a c < <("$SP_BIN/wgkey" genkey) || return 1
	sp_wg_end "$SP_NS_S" "wgs$SP_SFX" 10.78.0.1/24 "${s[0]}" 51820 "${c[1]}" - 10.78.0.2/32 &&
		sp_wg_end "$SP_NS_C" "wgc$SP_SFX" 10.78.0.2/24 "${c[0]}" - "${s[1]}" 10.201.0.1:51820 10.78.0.0/24 &&
		sp_ping 10.78.0.1
}

# sp_start_bondtun: a one-uplink bondtun tunnel 10.77.0.2 <-> 10.77.0.1 over the veth.
sp_start_bondtun() {
	local skey ckey spub cpub pid
	skey=$("$SP_BIN/bondtun" genkey) && ckey=$("$SP_BIN/bondtun" genkey) || return 1
	spub=$("$SP_BIN/bondtun" pubkey <<<"$skey") && cpub=$("$SP_BIN/bondtun" pubkey <<<"$ckey") || return 1
	# Created 0600 before the keys go in: `bondtun up` refuses a key others can read.
	install -m 600 /dev/null "$SP_WORK/server.yaml" && install -m 600 /dev/null "$SP_WORK/client.yaml" || return 1
	cat >"$SP_WORK/server.yaml" <<EOF
version: 1
private_key: "$skey"
log_level: warn
tun:
  name: bts$SP_SFX
  addresses: [10.77.0.1/24]
listen:
  port: 7350
  addresses: [10.201.0.1]
peers:
  - name: client
    public_key: "$cpub"
    allowed_ips: [10.77.0.2/32]
EOF
	cat >"$SP_WORK/client.yaml" <<EOF
version: 1
private_key: "$ckey"
log_level: warn
tun:
  name: btc$SP_SFX
  addresses: [10.77.0.2/24]
  mtu: 0
uplinks:
  - name: veth
    interface: vc$SP_SFX
    address: 10.201.0.2
    tier: primary
peers:
  - name: server
    public_key: "$spub"
    endpoint: 10.201.0.1:7350
    allowed_ips: [10.77.0.0/24]
scheduler: eat
EOF
	ip netns exec "$SP_NS_S" "$SP_BIN/bondtun" up -c "$SP_WORK/server.yaml" >"$SP_WORK/bondtun-server.log" 2>&1 &
	pid=$!
	SP_PIDS+=("$pid")
	SP_BT_PIDS+=("$pid")
	sp_wait_for "$pid" ip -n "$SP_NS_S" link show "bts$SP_SFX" >/dev/null || return 1
	ip netns exec "$SP_NS_C" "$SP_BIN/bondtun" up -c "$SP_WORK/client.yaml" >"$SP_WORK/bondtun-client.log" 2>&1 &
	pid=$!
	SP_PIDS+=("$pid")
	SP_BT_PIDS+=("$pid")
	sp_ping 10.77.0.1
}

# sp_start_servers: btperf TCP (5201) and UDP (5202) servers in the server namespace.
sp_start_servers() {
	ip netns exec "$SP_NS_S" "$SP_BIN/btperf" server -l 0.0.0.0:5201 >"$SP_WORK/btperf-tcp.log" 2>&1 &
	SP_PIDS+=("$!")
	ip netns exec "$SP_NS_S" "$SP_BIN/btperf" udp-server -l 0.0.0.0:5202 >"$SP_WORK/btperf-udp.log" 2>&1 &
	SP_PIDS+=("$!")
	sleep 0.3
}

# sp_cpu_ticks PID...: the sum of utime+stime (clock ticks) of the processes.
sp_cpu_ticks() {
	local pid sum=0 stat rest
	local -a f
	for pid in "$@"; do
		stat=$(<"/proc/$pid/stat") || return 1
		rest=${stat##*) } # the command name may contain spaces; fields after it
		read -r -a f <<<"$rest"
		sum=$((sum + f[11] + f[12])) # fields 14 and 15 of stat(5)
	done
	echo "$sum"
}

# sp_now: monotonic-enough wall clock in nanoseconds.
sp_now() { date +%s%N; }

# sp_median: the median of the numbers on stdin, one per line ("na" if none;
# the mean of the middle two for an even count).
sp_median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "na"; exit }
		if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.6g\n", m }'
}

# sp_teardown: stop every process started here, delete the namespaces (and so
# the veth) and the sockets the tunnels may have left. Safe to call twice,
# and under set -e.
sp_teardown() {
	local pid i
	for pid in "${SP_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${SP_PIDS[@]}"; do
		for ((i = 0; i < 60; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	SP_PIDS=()
	if [[ -n ${SP_NS_C:-} ]]; then ip netns del "$SP_NS_C" 2>/dev/null || true; fi
	if [[ -n ${SP_NS_S:-} ]]; then ip netns del "$SP_NS_S" 2>/dev/null || true; fi
	if [[ -n ${SP_SFX:-} ]]; then
		ip link del "vc$SP_SFX" 2>/dev/null || true # only if setup failed before moving it
		rm -f "/var/run/wireguard/wgc$SP_SFX.sock" "/var/run/wireguard/wgs$SP_SFX.sock" \
			/run/bondtun/btc"$SP_SFX"-*.sock /run/bondtun/bts"$SP_SFX"-*.sock
	fi
	return 0
}
