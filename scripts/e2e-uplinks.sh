#!/usr/bin/env bash
# e2e-uplinks.sh: a reload adds and removes a client's uplink while a verified download
# runs through the tunnel, over the emulated testbed of scripts/lib/testbed.sh:
#   - the client starts with the cable alone in its file; the DSL link exists but is unused;
#   - the DSL is added to the file, `bondtun reload`: its policy rule appears, it carries
#     the download too (at least a quarter of its rate within 5 s of joining), and the
#     session is the same (no new handshake);
#   - the DSL is removed from the file, `bondtun reload`: its rule goes, it carries nothing
#     more, the cable's rule never changed;
#   - the download, running all along, completes with every byte verified.
# BIN (default ./bin) must hold bondtun, linkemu and btperf. Prints "UPLINKS key=value"
# lines, exits non-zero on the first failed check. Needs root; cleans up what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./bin}

# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
SFX=upl$$
WORK=$(mktemp -d /tmp/bondtun-uplinks.XXXXXX)
PIDS=()
fail() { tb_fail UPLINKS "$@"; }
tb_cleanup_on_exit
# poll SECONDS CMD...: run CMD every 0.1 s until it succeeds (0) or SECONDS pass (1).
poll() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

TB_DIR=$WORK LINKEMU=$BIN/linkemu tb_setup "$SFX" 2>"$WORK/testbed.log" || fail "testbed setup"
C="ip netns exec $TB_NS_C"
S="ip netns exec $TB_NS_S"
# both.yaml: the example client (cable and DSL); cable.yaml: the same without the DSL.
cp configs/client.yaml "$WORK/both.yaml"
awk '/^  - name: dsl/{skip=1} /^peers:/{skip=0} !skip' configs/client.yaml >"$WORK/cable.yaml"
grep -q 'name: dsl' "$WORK/cable.yaml" && fail "cable.yaml still has the DSL"
cp "$WORK/cable.yaml" "$WORK/client.yaml"
cp configs/server.yaml "$WORK/server.yaml"
chmod 600 "$WORK"/*.yaml

$S "$BIN/bondtun" up -c "$WORK/server.yaml" 2>"$WORK/server.log" &
PIDS+=($!)
$S "$BIN/btperf" server -l 0.0.0.0:5201 >"$WORK/btperf.log" 2>&1 &
PIDS+=($!)
server_listens() { grep -q . <<<"$($S ss -Hltn 'sport = :7350')"; }
poll 10 server_listens || fail "the server does not listen"
$C "$BIN/bondtun" up -c "$WORK/client.yaml" 2>"$WORK/client.log" &
CLIENT=$!
PIDS+=("$CLIENT")
poll 20 $C ping -c1 -W1 10.77.0.1 >/dev/null 2>&1 || fail "tunnel did not come up"

rx() { $C cat "/sys/class/net/$1/statistics/rx_bytes"; }
# window DSL CABLE: the bytes up1 (the DSL) and up0 (the cable) receive in 0.5 s, into the
# variables named DSL and CABLE.
window() {
	local d c
	d=$(rx up1) c=$(rx up0)
	sleep 0.5 # a measuring window, not a wait for something to happen
	printf -v "$1" %d $(($(rx up1) - d))
	printf -v "$2" %d $(($(rx up0) - c))
}
# carries IFACE: IFACE receives more than 100 KB in 0.1 s (the download runs over it).
carries() {
	local a
	a=$(rx "$1")
	sleep 0.1
	(($(rx "$1") - a > 100000))
}
# removed_quiet: the DSL receives under 20 KB in 0.5 s while the cable carries the
# download (over 100 KB): what was in flight on the DSL has arrived.
removed_quiet() {
	window after cable_now
	((after < 20000 && cable_now > 100000))
}
dsl_rule() { grep -q 'from 10.100.2.2 lookup 7351' <<<"$($C ip rule show)"; }
cable_rule() { $C ip rule show | grep 'from 10.100.1.2 lookup 7350'; }
cable_before=$(cable_rule)
[[ -n $cable_before ]] || fail "no policy rule for the cable"
dsl_rule && fail "a policy rule for the DSL, which the file does not have"

# The download runs through every reload below. Each check sees the cable (or the DSL)
# carry it, so none passes because it has ended.
# With BBR where the kernel has it (any host default otherwise): its gentle probes (a quarter
# more for one round trip in eight) are what found nothing of a path that joined with only
# the cable's overflow; Cubic's growth fills the cable's queue until the DSL takes its part.
cc=cubic
if grep -qw bbr /proc/sys/net/ipv4/tcp_available_congestion_control || modprobe tcp_bbr 2>/dev/null; then
	cc=bbr
fi
echo "UPLINKS cc=$cc"
$C "$BIN/btperf" client -c 10.77.0.1:5201 -reverse -verify -cc "$cc" -t 15s >"$WORK/transfer.log" 2>&1 &
XFER=$!
PIDS+=("$XFER")
poll 5 carries up0 || fail "the download does not run over the cable"
d0=$(rx up1)
window idle cable_now
((idle < 20000)) || fail "the DSL, not in the file, received $idle bytes in 0.5 s"
((cable_now > 100000)) || fail "the download stalled: the cable received $cable_now bytes in 0.5 s"

cp "$WORK/both.yaml" "$WORK/client.yaml"
out=$($C "$BIN/bondtun" reload -c "$WORK/client.yaml" 2>&1) || fail "reload adding the DSL: $out"
grep -q 'uplinks added 1 (dsl)' <<<"$out" || fail "reload adding the DSL: $out"
dsl_rule || fail "no policy rule for the added DSL"
t0=$(date +%s%N) a0=$(rx up1)
dsl_joined() { (($(rx up1) - a0 > 100000)); }
poll 10 dsl_joined || fail "the added DSL received $(($(rx up1) - a0)) bytes in 10 s, not the download"
joined_ms=$((($(date +%s%N) - t0) / 1000000))
# It must take its share, not only a trickle: an inner flow that probes gently (BBR) found
# no more than the cable when the new path got only what the cable could not take
# (docs/DECISIONS.md, "A path that joins a running transfer is tried"). 300 KB in 0.5 s is
# a quarter of what the 20 Mbit/s DSL carries.
dsl_now=0
dsl_carries() {
	window dsl_now cable_now
	((dsl_now > 300000))
}
poll 5 dsl_carries || fail "the added DSL carries only $dsl_now bytes in 0.5 s (the cable $cable_now), 5 s after it joined"
dsl_bytes=$(($(rx up1) - d0))
echo "UPLINKS added=yes dsl_joined_ms=$joined_ms dsl_share_kb_per_0.5s=$((dsl_now / 1000))"

cp "$WORK/cable.yaml" "$WORK/client.yaml"
out=$($C "$BIN/bondtun" reload -c "$WORK/client.yaml" 2>&1) || fail "reload removing the DSL: $out"
grep -q 'uplinks removed 1 (dsl)' <<<"$out" || fail "reload removing the DSL: $out"
dsl_rule && fail "the removed DSL's policy rule is still there"
after=0 cable_now=0
poll 5 removed_quiet || fail "the removed DSL still received $after bytes in 0.5 s, 5 s after the reload (the cable $cable_now)"
[[ $(cable_rule) == "$cable_before" ]] || fail "the cable's rule changed: $(cable_rule)"
echo "UPLINKS removed=yes"

wait "$XFER" || fail "the download failed: $(cat "$WORK/transfer.log")"
res=$(grep '^RESULT' "$WORK/transfer.log") || fail "no result: $(cat "$WORK/transfer.log")"
grep -q 'verified=yes' <<<"$res" || fail "download not verified: $res"
sessions=$(grep -c 'session established' "$WORK/server.log")
((sessions == 1)) || fail "$sessions sessions established; the reloads must keep the one session"
kill -0 "$CLIENT" 2>/dev/null || fail "the client exited"
echo "UPLINKS transfer ${res#RESULT } dsl_bytes=$dsl_bytes sessions=$sessions"
echo "UPLINKS PASS"
