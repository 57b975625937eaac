#!/usr/bin/env bash
# e2e-uplinks.sh: a reload adds and removes a client's uplink while a verified download
# runs through the tunnel, over the emulated testbed of scripts/lib/testbed.sh:
#   - the client starts with the cable alone in its file; the DSL link exists but is unused;
#   - the DSL is added to the file, `bondtun reload`: its policy rule appears, it carries
#     the download too, and the session is the same (no new handshake);
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
sleep 0.3
$C "$BIN/bondtun" up -c "$WORK/client.yaml" 2>"$WORK/client.log" &
CLIENT=$!
PIDS+=("$CLIENT")
for ((i = 0; i < 100; i++)); do
	$C ping -c1 -W1 10.77.0.1 >/dev/null 2>&1 && break
	sleep 0.1
done
$C ping -c1 -W1 10.77.0.1 >/dev/null 2>&1 || fail "tunnel did not come up"

rx() { $C cat "/sys/class/net/$1/statistics/rx_bytes"; }
dsl_rule() { $C ip rule show | grep -q 'from 10.100.2.2 lookup 7351'; }
cable_rule() { $C ip rule show | grep 'from 10.100.1.2 lookup 7350'; }
cable_before=$(cable_rule)
[[ -n $cable_before ]] || fail "no policy rule for the cable"
dsl_rule && fail "a policy rule for the DSL, which the file does not have"

# The download runs through every reload below.
$C "$BIN/btperf" client -c 10.77.0.1:5201 -reverse -verify -t 9s >"$WORK/transfer.log" 2>&1 &
XFER=$!
PIDS+=("$XFER")
sleep 1.5
d0=$(rx up1)
sleep 0.5
idle=$(($(rx up1) - d0))
((idle < 20000)) || fail "the DSL, not in the file, received $idle bytes in 0.5 s"

cp "$WORK/both.yaml" "$WORK/client.yaml"
out=$($C "$BIN/bondtun" reload -c "$WORK/client.yaml" 2>&1) || fail "reload adding the DSL: $out"
grep -q 'uplinks added 1 (dsl)' <<<"$out" || fail "reload adding the DSL: $out"
dsl_rule || fail "no policy rule for the added DSL"
ok=no
for ((i = 0; i < 30; i++)); do
	a=$(rx up1)
	sleep 0.1
	if (($(rx up1) - a > 100000)); then
		ok=yes
		break
	fi
done
[[ $ok == yes ]] || fail "the added DSL does not carry the download"
dsl_bytes=$(($(rx up1) - d0))
echo "UPLINKS added=yes dsl_joined_ms=$((i * 100))"

cp "$WORK/cable.yaml" "$WORK/client.yaml"
out=$($C "$BIN/bondtun" reload -c "$WORK/client.yaml" 2>&1) || fail "reload removing the DSL: $out"
grep -q 'uplinks removed 1 (dsl)' <<<"$out" || fail "reload removing the DSL: $out"
dsl_rule && fail "the removed DSL's policy rule is still there"
sleep 0.5
r0=$(rx up1)
sleep 0.5
after=$(($(rx up1) - r0))
((after < 20000)) || fail "the removed DSL still received $after bytes in 0.5 s"
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
