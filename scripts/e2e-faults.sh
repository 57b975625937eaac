#!/usr/bin/env bash
# e2e-faults.sh: `bondtun up` waits out the faults it can (docs/DEPLOY.md "Boot order and
# outages"), over the emulated testbed of scripts/lib/testbed.sh:
#   - the client starts before its DSL uplink exists and before the server listens: it
#     keeps running, with its device in place, and retries;
#   - the server starts: the tunnel comes up without a restart of the client;
#   - the DSL link appears (its emulator starts, creating up1): it joins, and a download
#     through the tunnel is carried by both uplinks;
#   - the server restarts under the running client: traffic resumes, the client never exits;
#   - a client restarted with a key update forced every second carries a verified download
#     through at least 4 updates, no datagram rejected by either end, no pause;
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

# Key updates forced every second (BONDTUN_DEBUG_REKEY_INTERVAL, docs/STATUS.md "Debug knobs")
# during a verified bonded download: the session goes through at least REKEY_MIN of them,
# neither end rejects a datagram as failing authentication (which is also what a datagram of
# a key phase the receiver has no key for counts as), the session is never re-established,
# and no 0.5 s interval after the first second falls below REKEY_DIP × the upper quartile of
# the intervals (an update that paused traffic would show as an interval near 0; the quartile
# rather than the median, so that dips in every other interval still show), whose median is
# at least REKEY_FLOOR Mbit/s, the DSL's rate alone (the bond carries ≈ 64): a pause after
# every update holds TCP in its retransmission back-off, slow throughout.
REKEY_T=6 REKEY_MIN=4 REKEY_DIP=0.3 REKEY_FLOOR=20
$C env BONDTUN_DEBUG_REKEY_INTERVAL=1s "$BIN/bondtun" up -c "$WORK/client.yaml" 2>>"$WORK/rekey-client.log" &
CLIENT=$!
PIDS+=("$CLIENT")
wait_tunnel 10 || fail "the tunnel did not come up with BONDTUN_DEBUG_REKEY_INTERVAL=1s"
grep -q 'BONDTUN_DEBUG_REKEY_INTERVAL sets the key update interval' "$WORK/rekey-client.log" ||
	fail "the client did not take BONDTUN_DEBUG_REKEY_INTERVAL"
sleep 1 # both paths validated before the measured window
# counters VAR NS CONFIG: VAR = "key_updates rx_auth_fail rx_prev_key", each summed over the
# sessions in `bondtun status -json` of the end in NS.
counters() {
	local js k out=
	js=$($2 "$BIN/bondtun" status -c "$3" -json) || fail "bondtun status -c $3"
	for k in key_updates rx_auth_fail rx_prev_key; do
		out+=$(grep -o "\"$k\":[0-9]*" <<<"$js" | awk -F: '{ s += $2 } END { printf "%d ", s }')
	done
	printf -v "$1" '%s' "$out"
}
established() { grep -c 'session established' "$1" || true; }
counters c0 "$C" "$WORK/client.yaml"
counters s0 "$S" configs/server.yaml
read -r cu0 ca0 cp0 <<<"$c0"
read -r su0 sa0 sp0 <<<"$s0"
ce0=$(established "$WORK/rekey-client.log") se0=$(established "$WORK/server.log")
$C timeout -k 2 $((REKEY_T + 20)) "$BIN/btperf" client -c 10.77.0.1:5201 -reverse -verify \
	-t "${REKEY_T}s" -omit 1s -i 0.5s >"$WORK/rekey-btperf.out" 2>>"$WORK/rekey-btperf.log" ||
	fail "the download during key updates failed: $(tail -2 "$WORK/rekey-btperf.log")"
counters c1 "$C" "$WORK/client.yaml"
counters s1 "$S" configs/server.yaml
read -r cu1 ca1 cp1 <<<"$c1"
read -r su1 sa1 sp1 <<<"$s1"
ce1=$(established "$WORK/rekey-client.log") se1=$(established "$WORK/server.log")
mbps=$(sed -n 's/^RESULT mbps=\([0-9.]*\).*/\1/p' "$WORK/rekey-btperf.out")
[[ -n $mbps ]] || fail "no result from the download during key updates: $(cat "$WORK/rekey-btperf.out")"
# The intervals ending after the omitted first second, the last (partial) one left out:
# "min median upper-quartile min/upper-quartile".
read -r ivmin ivmed ivq3 dip <<<"$(sed -n 's/^t=\([0-9.]*\) mbps=\([0-9.]*\).*/\1 \2/p' "$WORK/rekey-btperf.out" |
	awk -v t="$REKEY_T" '$1 > 1.4 && $1 <= t + 0.01 { print $2 }' | sort -g |
	awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)] + 0; q = v[int((3 * NR + 3) / 4)] + 0
		printf "%s %s %s %.2f\n", v[1] + 0, m, q, (q > 0 ? v[1] / q : 0) }')"
echo "FAULTS rekey_mbps=$mbps rekey_updates_client=$((cu1 - cu0)) rekey_updates_server=$((su1 - su0))" \
	"rekey_auth_fail_client=$((ca1 - ca0)) rekey_auth_fail_server=$((sa1 - sa0))" \
	"rekey_prev_key_client=$((cp1 - cp0)) rekey_prev_key_server=$((sp1 - sp0))" \
	"rekey_sessions_established=$((ce1 - ce0 + se1 - se0))" \
	"rekey_interval_min_mbps=$ivmin rekey_interval_median_mbps=$ivmed rekey_interval_q3_mbps=$ivq3 rekey_dip_ratio=$dip"
intervals() { grep '^t=' "$WORK/rekey-btperf.out" | tr '\n' ' '; }
((cu1 - cu0 >= REKEY_MIN && su1 - su0 >= REKEY_MIN)) ||
	fail "$((cu1 - cu0)) key updates at the client, $((su1 - su0)) at the server during a ${REKEY_T} s download with updates every 1 s, want >= $REKEY_MIN"
((ca1 == ca0 && sa1 == sa0)) ||
	fail "datagrams failed authentication during key updates: $((ca1 - ca0)) at the client, $((sa1 - sa0)) at the server"
((ce1 == ce0 && se1 == se0)) || fail "a session was established during the download with key updates"
awk -v m="$ivmed" -v f="$REKEY_FLOOR" 'BEGIN { exit !(m >= f) }' ||
	fail "the median 0.5 s interval during key updates is $ivmed Mbit/s, want >= $REKEY_FLOOR: $(intervals)"
awk -v d="$dip" -v m="$REKEY_DIP" 'BEGIN { exit !(d >= m) }' ||
	fail "a 0.5 s interval of $ivmin Mbit/s during key updates, under $REKEY_DIP × the upper quartile $ivq3: $(intervals)"
echo "FAULTS rekey=yes"
tb_stop "$CLIENT"
left=$($C ip rule show | grep -E 'proto (183|0xb7)' || true)
[[ -z $left ]] || fail "rules left after the rekeying client's SIGTERM: $left"

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
