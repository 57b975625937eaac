#!/usr/bin/env bash
# bench-simgrid.sh: the sweep of link kinds on the fake clock (session/simgrid_test.go): random
# two- and three-link combinations (rates up to 10:1, one-way delays 2–60 ms, jitter 0–10 ms,
# queues 5–300 ms, loss 0–2 %, asymmetric return links), each carrying a greedy message stream
# through two real session engines over the in-memory network for 4 simulated seconds. No
# root, no namespaces; about 5 s of real time per run of 24 combinations.
#
# It runs the grid SIMGRID_RUNS times (goroutine scheduling makes runs differ) and prints
#   GRID combo=… mbps=… sum_ratio=… best_link_ratio=… lost=… sent=…   (every combination)
#   GRID combos=… min_ratio=… median_ratio=… worst_best_link_ratio=…   (every run)
#   SIMGRID runs=… worst_min_ratio=… worst_best_link_ratio=… runs_below_best_link=…
# sum_ratio is the stream's goodput over the links' exact capacity for it, best_link_ratio
# over the best link's. Environment: SIMGRID_RUNS [5], SIMGRID_COMBOS [24].
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
RUNS=${SIMGRID_RUNS:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -c -o "$out.test" ./session/
for ((i = 1; i <= RUNS; i++)); do
	(cd session && BONDTUN_SIMGRID=1 BONDTUN_SIMGRID_COMBOS=${SIMGRID_COMBOS:-24} "$out.test" \
		-test.run TestSimAggregationGrid -test.count 1) | grep '^GRID' | tee -a "$out" || true
done
rm -f "$out.test"
awk '/^GRID combos=/ {
		n++
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == "min_ratio" && (n == 1 || kv[2] < mr)) mr = kv[2]
			if (kv[1] == "worst_best_link_ratio") { if (n == 1 || kv[2] < wb) wb = kv[2]; if (kv[2] < 0.95) below++ }
		}
	}
	END { printf "SIMGRID runs=%d worst_min_ratio=%s worst_best_link_ratio=%s runs_below_best_link=%d\n", n, mr, wb, below + 0 }' "$out"
