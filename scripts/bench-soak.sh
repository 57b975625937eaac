#!/usr/bin/env bash
# bench-soak.sh [SECONDS] [SCENARIO]: no spurious failover under saturation.
#
# In the two-namespace testbed (scripts/lib/testbed.sh; SCENARIO H by default,
# E and L as in bench.sh), one inner TCP download through bondtun for SECONDS
# [600] with both links healthy all along. Any liveness change of a path
# after it first came up (suspect, dead, down, rejoining) is a spurious
# failover: nothing failed. It prints, and copies to out/soak-<date>.md,
#   SOAK scenario=H secs=600 mbps=… spurious=N (client C, server S)
# plus the offending log lines. Not part of CI (it takes SECONDS + ~15 s).
# Needs root (otherwise prints SKIP and exits 0).
# Environment: BIN [build into a temporary dir], SOAK_FLOWS [1], SOAK_CC [cubic].
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

SECS=${1:-600}
SCEN=${2:-H}
FLOWS=${SOAK_FLOWS:-1}
CC=${SOAK_CC:-cubic}
usage() { echo "usage: $0 [SECONDS] [H|E|L]" >&2; exit 2; }
# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
[[ $SECS =~ ^[1-9][0-9]*$ ]] || usage
tb_scenario "$SCEN" || usage
if [[ $(id -u) -ne 0 ]]; then
	echo "SKIP bench-soak.sh: needs root (network namespaces, TUN devices)"
	exit 0
fi

WORK=$(mktemp -d /tmp/bondtun-soak.XXXXXX)
PIDS=()
tb_cleanup_on_exit
log() { printf '[soak] %s\n' "$*" >&2; }

if [[ -z ${BIN:-} ]]; then
	BIN=$WORK/bin
	log "building into $BIN"
	# shellcheck source=lib/version.sh
	source scripts/lib/version.sh
	bt_build -o "$BIN/" ./cmd/bondtun ./cmd/linkemu ./cmd/btperf
fi
# shellcheck disable=SC2034 # read by tb_setup
TB_DIR=$WORK
# shellcheck disable=SC2034 # read by tb_setup
LINKEMU=$BIN/linkemu
tb_setup "soak$$" 2>"$WORK/testbed.log" || { cat "$WORK/testbed.log" >&2; exit 1; }
C=(ip netns exec "$TB_NS_C")
S=(ip netns exec "$TB_NS_S")
"${S[@]}" "$BIN/btperf" server -l 0.0.0.0:5201 >"$WORK/btperf.log" 2>&1 &
PIDS+=($!)
# `bondtun up` refuses a private key that group or others can read (docs/SECURITY.md).
chmod 600 configs/server.yaml configs/client.yaml
"${S[@]}" "$BIN/bondtun" up -c configs/server.yaml 2>"$WORK/server.log" &
PIDS+=($!)
sleep 0.3
"${C[@]}" "$BIN/bondtun" up -c configs/client.yaml 2>"$WORK/client.log" &
PIDS+=($!)
for ((i = 0; i < 50; i++)); do
	timeout 2 "${C[@]}" ping -c1 -W0.3 10.77.0.1 >/dev/null 2>&1 && break
	sleep 0.2
done
sleep 2 # every path validated
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "$SECS s download, $FLOWS flow(s), scenario $SCEN"
mbps=$(timeout -k 2 $((SECS + 60)) "${C[@]}" "$BIN/btperf" client -c 10.77.0.1:5201 -reverse \
	-t "${SECS}s" -omit 2s -P "$FLOWS" -cc "$CC" | sed -n 's/^RESULT mbps=\([0-9.]*\).*/\1/p') || true

# Liveness changes after the first "path up" of each path are spurious.
spurious() {
	awk '/msg="path / {
		match($0, /path=[^ ]*/); p = substr($0, RSTART, RLENGTH)
		match($0, /msg="path [a-z]*"/); st = substr($0, RSTART + 10, RLENGTH - 11)
		if (st == "up" && !(p in up)) { up[p] = 1; next }
		if (p in up && st != "validating") print
	}' "$1"
}
spurious "$WORK/client.log" >"$WORK/client.spurious"
spurious "$WORK/server.log" >"$WORK/server.spurious"
nc=$(wc -l <"$WORK/client.spurious")
ns=$(wc -l <"$WORK/server.spurious")
mkdir -p out
OUT=out/soak-$(date -u +%Y%m%dT%H%M%SZ).md
{
	echo "# bench-soak $SCEN, $(date -u '+%F %T UTC')"
	echo
	echo "secs=$SECS flows=$FLOWS cc=$CC commit=$(git rev-parse --short HEAD 2>/dev/null || echo ?) load_before=\"$load_before\" load_after=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
	echo
	echo '```'
	echo "SOAK scenario=$SCEN secs=$SECS mbps=${mbps:-none} spurious=$((nc + ns)) (client $nc, server $ns)"
	cat "$WORK/client.spurious" "$WORK/server.spurious"
	echo '```'
} | tee "$OUT"
log "report copied to $OUT"
