#!/usr/bin/env bash
# e2e-faults.sh: `bondtun up` waits out the faults it can (docs/DEPLOY.md "Boot order and
# outages"), over the emulated testbed of scripts/lib/testbed.sh:
#   - the client starts before its DSL uplink exists and before the server listens: it
#     keeps running, with its device in place, and retries;
#   - the server starts: the tunnel comes up without a restart of the client;
#   - the DSL link appears (its emulator starts, creating up1): it joins, and a download
#     through the tunnel is carried by both uplinks;
#   - the server restarts under the running client: traffic resumes, the client never exits;
#   - whole-host mode with tun.while_down: direct: the tunnel's default routes are there
#     only while a session is;
#   - a client whose config pins another server key ends at once, saying so, with exit
#     status 3 (an authenticated refusal, which the systemd unit does not restart), and
#     leaves nothing behind.
# BIN (default ./bin) must hold bondtun, linkemu and btperf. Prints "FAULTS key=value"
# lines, exits non-zero on the first failed check. Needs root; cleans up what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./bin}

# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
SFX=flt$$
WORK=$(mktemp -d /tmp/bondtun-faults.XXXXXX)
PIDS=()
fail() { tb_fail FAULTS "$@"; }
tb_cleanup_on_exit

# Plain assignments, not a prefix of the call: tb_add_dsl needs them after tb_setup.
TB_DIR=$WORK LINKEMU=$BIN/linkemu TB_DEFER_DSL=1
tb_setup "$SFX" 2>"$WORK/testbed.log" || fail "testbed setup"
C="ip netns exec $TB_NS_C"
S="ip netns exec $TB_NS_S"
# A whole-host client (default route into the tunnel) that routes directly while the
# tunnel is down (tun.while_down: direct): the default route's halves come and go.
sed 's|^  mtu: 0 .*|  mtu: 0\n  routes: [0.0.0.0/0]\n  while_down: direct|' configs/client.yaml >"$WORK/client.yaml"
grep -q 'while_down: direct' "$WORK/client.yaml" || fail "client config: no while_down"
chmod 600 "$WORK/client.yaml" configs/server.yaml
$C ip link show up1 >/dev/null 2>&1 && fail "up1 exists before the DSL link was added"

start_server() {
	$S "$BIN/bondtun" up -c configs/server.yaml 2>>"$WORK/server.log" &
	SERVER=$!
	PIDS+=("$SERVER")
}
# wait_tunnel SECONDS: ping through the tunnel until it answers.
wait_tunnel() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		$C ping -c1 -W1 10.77.0.1 >/dev/null 2>&1 && return 0
		kill -0 "$CLIENT" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
alive() { kill -0 "$CLIENT" 2>/dev/null || fail "the client exited ($1)"; }

# The client first: no DSL interface, no server.
$C "$BIN/bondtun" up -c "$WORK/client.yaml" 2>>"$WORK/client.log" &
CLIENT=$!
PIDS+=("$CLIENT")
for ((i = 0; i < 50; i++)); do
	grep -q 'no session; retrying' "$WORK/client.log" && break
	sleep 0.1
done
alive "with no server and no DSL"
grep -q 'no session; retrying' "$WORK/client.log" || fail "the client does not say it retries"
grep -q 'uplink not ready' "$WORK/client.log" || fail "the client does not say the DSL uplink is not ready"
$C ip link show bt0 >/dev/null || fail "no tunnel device while waiting"
echo "FAULTS waits_without_server=yes"
# default_via_tunnel: the default route's halves go into bt0.
default_via_tunnel() { grep -q 'dev bt0' <<<"$($C ip route show table 7349 0.0.0.0/1)"; } # tun.table's default
default_via_tunnel && fail "while_down: direct, but the default route goes into the tunnel before any session"

start_server
t0=$(date +%s%N)
wait_tunnel 10 || fail "the tunnel did not come up after the server started"
echo "FAULTS server_late=yes server_late_ms=$((($(date +%s%N) - t0) / 1000000))"
default_via_tunnel || fail "session up, but the default route does not go into the tunnel"

$S "$BIN/btperf" server -l 0.0.0.0:5201 >"$WORK/btperf.log" 2>&1 &
PIDS+=($!)
tb_add_dsl 2>>"$WORK/testbed.log" || fail "adding the DSL link"
rx() { $C cat "/sys/class/net/$1/statistics/rx_bytes"; }
# Both uplinks carry a download (up to 3 tries of 1 s while the DSL path validates).
ok=no
for ((i = 0; i < 3; i++)); do
	a0=$(rx up0) a1=$(rx up1)
	$C "$BIN/btperf" client -c 10.77.0.1:5201 -reverse -t 1s >/dev/null 2>&1 || true
	d0=$(($(rx up0) - a0)) d1=$(($(rx up1) - a1))
	if ((d0 > 300000 && d1 > 300000)); then
		ok=yes
		break
	fi
done
echo "FAULTS dsl_late=$ok cable_bytes=$d0 dsl_bytes=$d1"
[[ $ok == yes ]] || fail "the late DSL uplink carries $d1 bytes, the cable $d0"
grep -q 'uplink appeared' "$WORK/client.log" || fail "the client did not log the DSL uplink appearing"
rules=$($C ip rule show)
grep -q "from 10.100.2.2 lookup 7351" <<<"$rules" || fail "no policy rule for the late DSL uplink; rules: $rules"

# The server restarts under the running client.
tb_stop "$SERVER"
for ((i = 0; i < 30; i++)); do
	default_via_tunnel || break
	sleep 0.1
done
default_via_tunnel && fail "the server is down, but the default route still goes into the tunnel (while_down: direct)"
echo "FAULTS direct_while_down=yes"
alive "with the server stopped"
start_server
t0=$(date +%s%N)
wait_tunnel 10 || fail "traffic did not resume after the server restarted"
alive "after the server restarted"
echo "FAULTS server_restart=yes resume_ms=$((($(date +%s%N) - t0) / 1000000))"
default_via_tunnel || fail "the session is back, but not the default route into the tunnel"

tb_stop "$CLIENT"
left=$($C ip rule show | grep -E 'proto (183|0xb7)' || true)
[[ -z $left ]] || fail "rules left after the client's SIGTERM: $left"

# A client pinning another server key ends at once, naming the key problem.
other=$("$BIN/bondtun" genkey | "$BIN/bondtun" pubkey)
sed "s|public_key: \"ndeZ8zsM+51YbbCCrnJMDOy+Y4ISDlw4Oi8ELyGIh3w=\"|public_key: \"$other\"|" "$WORK/client.yaml" >"$WORK/wrongkey.yaml"
chmod 600 "$WORK/wrongkey.yaml"
grep -q "$other" "$WORK/wrongkey.yaml" || fail "wrong-key config not made"
t0=$(date +%s%N)
rc=0
out=$($C timeout 15 "$BIN/bondtun" up -c "$WORK/wrongkey.yaml" 2>&1) || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
((rc == 3)) || fail "up with a wrong server key exited $rc, want 3 (refused): $(tail -3 <<<"$out")"
grep -q "server's key is not the configured one" <<<"$out" || fail "up with a wrong server key: $(tail -3 <<<"$out")"
((ms < 5000)) || fail "up with a wrong server key took $ms ms to give up"
left=$($C ip link show bt0 2>/dev/null || true; $C ip rule show | grep -E 'proto (183|0xb7)' || true)
[[ -z $left ]] || fail "left behind after a refusal: $left"
echo "FAULTS wrong_key_ends=yes wrong_key_exit=$rc wrong_key_ms=$ms"
echo "FAULTS PASS"
