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
#   - `bondtun check` passes the client's config and fails one that clashes with the host;
#   - `status` and `status --json` of a client whose tun.name is a pattern (bt%d), with
#     -c and without (found in /run/bondtun);
#   - /metrics (metrics.listen) scraped and parsed: the paths, their states, bytes sent;
#   - reload on the server while the client's tunnel runs: SIGHUP with a broken file and
#     `bondtun reload` of one that changes listen.port are refused (the tunnel and the
#     server's state are kept; reload exits 1); SIGHUP with a second peer added installs
#     its route and keeps the client's session; one SIGHUP that adds a third peer and
#     removes the second, while the client pings every 20 ms: no ping lost or delayed a
#     second, the client's session kept, the routes of table 7349 follow; SIGHUP on the
#     client keeps its tunnel;
#   - SIGTERM removes the device, routes, rules and the control socket;
#   - `bondtun down` stops a running `up`, which cleans up after itself;
#   - after a SIGKILL, `bondtun down` removes the leftovers, the stale control socket too.
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
fail() { tb_fail E2E "$@"; }
tb_cleanup_on_exit

TB_DIR=$WORK LINKEMU=$BIN/linkemu tb_setup "$SFX" 2>"$WORK/testbed.log" || fail "testbed setup"
C="ip netns exec $TB_NS_C"
TB_CTL_cable_cmd="$BIN/linkemu ctl $TB_CTL_cable"
S="ip netns exec $TB_NS_S"

# The client config names only the uplinks' interfaces, so the uplinks follow their
# addresses (as with DHCP): the renumbering check below needs that. Its device is a
# pattern; in the fresh namespace the kernel names it bt0.
sed -e '/^    address:/d' -e 's/^  name: bt0$/  name: bt%d/' configs/client.yaml >"$WORK/client.yaml"
grep -q 'name: bt%d' "$WORK/client.yaml" || fail "client config: no pattern name"
# The Prometheus endpoint, on the client namespace's own loopback.
printf 'metrics:\n  listen: 127.0.0.1:9725\n' >>"$WORK/client.yaml"
# `bondtun up` refuses a private key that group or others can read (docs/SECURITY.md).
cp configs/server.yaml "$WORK/server.yaml" # the reload checks below change it
chmod 600 "$WORK/client.yaml" "$WORK/server.yaml"
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
# trace_summary NS CONF OUT: the flight recorder of the bondtun running in NS, one line per
# path every 500 ms (what tb_fail prints of OUT is its last 30 lines: the last transfer).
trace_summary() {
	timeout -k 2 20 ip netns exec "$1" "$BIN/bondtun" status -c "$2" --trace "$WORK/trace.csv" >/dev/null 2>&1 || return 0
	awk -F, '/^#/ || /^t_ms/ { next }
		!($2 in last) || $1 - last[$2] >= 500 {
			last[$2] = $1
			printf "%.0f %s %s rate=%.1f srtt=%s min=%s win=%s infl=%s q=%s lost=%s tx=%s\n",
				$1, $2, $3, $4 / 1e6, $6, $7, $9, $10, $11, $15, $16
		}' "$WORK/trace.csv" >"$3"
}
SOCK= # the client's control socket, once status has told it
leftovers() { # prints what bondtun left in the client namespace
	$C ip link show bt0 2>/dev/null | sed -n 1p
	$C ip rule show | grep -E 'proto (183|0xb7)' || true
	$C ip route show table all | grep -E 'proto (183|0xb7)' || true
	if [[ -n $SOCK && -e $SOCK ]]; then echo "control socket $SOCK"; fi
}
# client_socket: the control socket the running client reports (status --json).
client_socket() {
	$C "$BIN/bondtun" status -c "$WORK/client.yaml" --json | sed -n 's/.*"socket":"\([^"]*\)".*/\1/p'
}

# `bondtun check` in the client namespace, before anything runs: the client's file passes
# with no warning; one whose allowed_ips are the cable's own network fails, naming the field.
out=$($C "$BIN/bondtun" check -c "$WORK/client.yaml" 2>&1) || fail "check of the client config: $out"
grep -q ': ok: client' <<<"$out" || fail "check: $out"
! grep -q 'warning' <<<"$out" || fail "check warns in the testbed: $out"
sed 's|allowed_ips: \[10.77.0.0/24\]|allowed_ips: [10.100.1.0/24]|' "$WORK/client.yaml" >"$WORK/clash.yaml"
if out=$($C "$BIN/bondtun" check -c "$WORK/clash.yaml" 2>&1); then fail "check passed a config that clashes with up0's network: $out"; fi
grep -q 'peers\[0\].allowed_ips\[0\]: the host already routes 10.100.1.0/24' <<<"$out" || fail "check of a clash: $out"
echo "E2E check=yes"

$S "$BIN/bondtun" up -c "$WORK/server.yaml" 2>"$WORK/server.log" &
SERVER=$!
PIDS+=("$SERVER")
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
# The transfers use 4 Cubic flows (Cubic as every benchmark, not the host's default): one
# inner flow whose slow start ends early (under CPU load its first RTT samples are the
# starved tunnel's) can stay below the window at which the DSL's packets would arrive first,
# and then rightly stays on the cable (docs/DECISIONS.md, "window stops growing early").
for dir in down up; do
	flag=
	[[ $dir == down ]] && flag=-reverse
	out=$($C "$BIN/btperf" client -c 10.77.0.1:5201 $flag -P 4 -cc cubic -bytes "$BYTES" -verify -t 60s 2>&1) || fail "transfer $dir: $out"
	res=$(grep '^RESULT' <<<"$out")
	echo "E2E transfer_$dir ${res#RESULT }"
	grep -q 'verified=yes' <<<"$res" || fail "transfer $dir not verified: $res"
done
after=($(rx up0) $(rx up1) $(tx up0) $(tx up1))
names=(cable_rx dsl_rx cable_tx dsl_tx)
for i in 0 1 2 3; do
	d=$((after[i] - before[i]))
	echo "E2E ${names[i]}_bytes=$d"
	if ((d <= 500000)); then
		trace_summary "$TB_NS_C" "$WORK/client.yaml" "$WORK/trace-client.log"
		trace_summary "$TB_NS_S" "$WORK/server.yaml" "$WORK/trace-server.log"
		fail "${names[i]} carried only $d bytes of tunnel traffic"
	fi
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
grep -q '"schema_version":1' "$WORK/status.json" || fail "status --json has no schema_version 1"
grep -q '"device":"bt0"' "$WORK/status.json" || fail "status --json does not name the pattern's device bt0"
grep -q '"state":"up"' "$WORK/status.json" || fail "status --json shows no path up"
$C "$BIN/bondtun" status -c "$WORK/client.yaml" >"$WORK/status.txt" || fail "status (text)"
grep -q '^bt0: client' "$WORK/status.txt" || fail "status: $(head -1 "$WORK/status.txt")"
SOCK=$(client_socket)
[[ -S $SOCK ]] || fail "no control socket ($SOCK)"
# Without -c: every socket in /run/bondtun (other tunnels on the host may answer too, or
# fail to: only this one's presence counts).
$C "$BIN/bondtun" status --json >"$WORK/status-all.json" 2>/dev/null || true
grep -qF "\"socket\":\"$SOCK\"" "$WORK/status-all.json" || fail "status without -c did not find $SOCK"
echo "E2E status_pattern=yes"

# /metrics scraped from inside the namespace (bash's /dev/tcp: no HTTP client needed) and
# parsed: both paths are there, one at least up, and the bytes sent to the server counted.
$C bash -c 'exec 3<>/dev/tcp/127.0.0.1/9725 && printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' \
	>"$WORK/metrics.txt" || fail "scrape of /metrics"
grep -q '^HTTP/1\.[01] 200' <<<"$(head -1 "$WORK/metrics.txt")" || fail "/metrics: $(head -1 "$WORK/metrics.txt")"
paths=$(grep -c '^bondtun_path_info{' "$WORK/metrics.txt" || true)
up=$(grep -c '^bondtun_path_state{.*state="up"} 1$' "$WORK/metrics.txt" || true)
sent=$(awk '$1 == "bondtun_peer_sent_bytes_total{peer=\"server\"}" { print $2 }' "$WORK/metrics.txt")
echo "E2E metrics_paths=$paths metrics_paths_up=$up metrics_sent_bytes=$sent"
[[ $paths == 2 && $up -ge 1 ]] || fail "/metrics shows $paths paths, $up up; want 2 paths, 1 or 2 up"
awk -v s="$sent" 'BEGIN { exit !(s + 0 > 1000000) }' || fail "/metrics: $sent bytes sent to the server after the transfers"
echo "E2E metrics=yes"

# Reload on the server, with the client's tunnel up. wait_log FILE TEXT N: FILE has N
# lines with TEXT within 5 s.
wait_log() {
	local i
	for ((i = 0; i < 50; i++)); do
		(($(grep -c -- "$2" "$1") >= $3)) && return 0
		sleep 0.1
	done
	return 1
}
sessions_before=$(grep -c 'session established' "$WORK/server.log")
cp "$WORK/server.yaml" "$WORK/server.good"
# A broken file (overlapping allowed_ips) is refused; the server and the tunnel run on.
cat "$WORK/server.good" - >"$WORK/server.yaml" <<'EOF2'
  - name: overlap
    public_key: "+eMztMfyjny3ngnR5tqM+1ogSMa8K9axOPGgo2e+msc="
    allowed_ips: [10.77.0.2/32]
EOF2
kill -HUP "$SERVER"
wait_log "$WORK/server.log" 'reload: configuration refused' 1 || fail "SIGHUP with a broken file: no refusal logged"
grep -q 'overlaps' <<<"$(grep 'reload: configuration refused' "$WORK/server.log")" || fail "the refusal does not name the error"
wait_tunnel || fail "tunnel gone after a broken reload"
# A file that changes a key fixed for the run: `bondtun reload` says which and exits 1.
sed 's/^  port: 7350$/  port: 7351/' "$WORK/server.good" >"$WORK/server.yaml"
if out=$($S "$BIN/bondtun" reload -c "$WORK/server.yaml" 2>&1); then fail "reload of a changed listen.port succeeded: $out"; fi
grep -q 'listen.port' <<<"$out" || fail "reload of a changed listen.port: $out"
# A second peer (A): its route appears, the client's session stays.
cat "$WORK/server.good" - >"$WORK/server.yaml" <<'EOF2'
  - name: second
    public_key: "+eMztMfyjny3ngnR5tqM+1ogSMa8K9axOPGgo2e+msc="
    allowed_ips: [10.77.0.3/32]
EOF2
kill -HUP "$SERVER"
wait_log "$WORK/server.log" 'reload: applied' 1 || fail "SIGHUP with a peer added: not applied"
grep -q '^10.77.0.3 ' <<<"$($S ip route show table 7349 dev bt0)" || fail "the added peer's route is not in the tunnel's table 7349: $($S ip route show table 7349 dev bt0)"
wait_tunnel || fail "tunnel gone after the reload"
(($(grep -c 'session established' "$WORK/server.log") == sessions_before)) || fail "the reload made the client open a new session"
kill -0 "$SERVER" 2>/dev/null || fail "the server ended"
echo "E2E reload_refused_kept=yes reload_applied=yes"

# One SIGHUP that adds a peer (B, a fresh key) and removes A, in the middle of 4 s of
# pings every 20 ms from the client (the third peer): none is lost, none waits a second,
# the client keeps its session, A's route is gone from table 7349 and B's is there.
pub_b=$("$BIN/bondtun" genkey | "$BIN/bondtun" pubkey) || fail "genkey | pubkey"
client_sessions=$(grep -c 'session established' "$WORK/client.log")
$C ping -c 200 -i 0.02 -W 2 10.77.0.1 >"$WORK/ping-swap.txt" 2>&1 &
pinger=$!
PIDS+=("$pinger")
sleep 1
cat "$WORK/server.good" - >"$WORK/server.yaml" <<EOF2
  - name: third
    public_key: "$pub_b"
    allowed_ips: [10.77.0.4/32]
EOF2
kill -HUP "$SERVER"
wait_log "$WORK/server.log" 'reload: applied' 2 || fail "SIGHUP with a peer added and one removed: not applied"
kill -0 "$pinger" 2>/dev/null || fail "the pings ended before the reload was applied (the check would test nothing)"
wait "$pinger" || true
routes=$($S ip route show table 7349 dev bt0)
loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$WORK/ping-swap.txt")
rtt_max=$(sed -n 's|^rtt min/avg/max/mdev = [0-9.]*/[0-9.]*/\([0-9.]*\)/.*|\1|p' "$WORK/ping-swap.txt")
echo "E2E reload_swap_ping_loss_pct=$loss reload_swap_rtt_max_ms=$rtt_max"
[[ $loss == 0 ]] || fail "ping loss $loss% across a reload that added and removed a peer: $(tail -2 "$WORK/ping-swap.txt")"
awk -v m="$rtt_max" 'BEGIN { exit !(m != "" && m + 0 < 1000) }' || fail "a ping waited $rtt_max ms across the reload (a pause)"
! grep -q '^10.77.0.3 ' <<<"$routes" || fail "the removed peer's route is still in table 7349: $routes"
grep -q '^10.77.0.4 ' <<<"$routes" || fail "the added peer's route is not in table 7349: $routes"
(($(grep -c 'session established' "$WORK/server.log") == sessions_before)) || fail "the swap made the server accept a new session"
(($(grep -c 'session established' "$WORK/client.log") == client_sessions)) || fail "the swap made the client open a new session"
kill -0 "$SERVER" 2>/dev/null || fail "the server ended"
echo "E2E reload_swap=yes"

# SIGHUP on the client: the process stays and so does the tunnel.
kill -HUP "$CLIENT"
wait_log "$WORK/client.log" 'reload: applied' 1 || fail "SIGHUP: no reload logged by the client"
kill -0 "$CLIENT" 2>/dev/null || fail "SIGHUP ended the client"
wait_tunnel || fail "tunnel gone after SIGHUP"
echo "E2E hup_kept=yes"

kill -TERM "$CLIENT"
# ended_clean WHAT: the client ended with status 0 and left nothing behind.
ended_clean() {
	wait "$CLIENT" || fail "client exited with status $? after $1"
	left=$(leftovers)
	[[ -z $left ]] || fail "left behind after $1: $left"
}
ended_clean SIGTERM
echo "E2E clean_exit=yes"
# restart_client WHICH: start the client again and learn its control socket.
restart_client() {
	start_client
	wait_tunnel || fail "tunnel did not come up the $1 time"
	SOCK=$(client_socket)
}

# `bondtun down` stops a running up, which tears down as on SIGTERM.
restart_client second
out=$($C "$BIN/bondtun" down -c "$WORK/client.yaml") || fail "bondtun down of a running up: $out"
grep -q 'stopped the running bondtun up' <<<"$out" || fail "bondtun down did not stop the running up: $out"
ended_clean "bondtun down of a running up"
echo "E2E down_stops=yes"

restart_client third
kill -KILL "$CLIENT"
wait "$CLIENT" 2>/dev/null || true
[[ -n $(leftovers) ]] || fail "expected leftovers after SIGKILL (test is not testing anything)"
$C "$BIN/bondtun" down -c "$WORK/client.yaml" >/dev/null || fail "bondtun down"
left=$(leftovers)
[[ -z $left ]] || fail "left behind after bondtun down: $left"
echo "E2E crash_cleanup=yes"
echo "E2E PASS"
