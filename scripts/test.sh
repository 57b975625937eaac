#!/usr/bin/env bash
# test.sh: bondtun's whole test suite — what CI runs (.ci/run calls exactly this).
#
#   formatting (gofmt), go vet, staticcheck, then every Go test with the race
#   detector: unit tables, golden vectors, fuzz seed corpora, in-process
#   sessions over loopback, and — as root — the real binaries in network
#   namespaces over the project's link emulator (internal/e2e, cmd/linkemu,
#   tun). Non-root runs skip the namespace tests and say so.
#
# FUZZTIME=10s additionally runs every fuzz target for that long.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:-}
scripts/setup.sh

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n $bad ]]; then
	echo "gofmt would change:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== benchmark analysis self-test"
scripts/bench-failover.sh selftest
echo "== go test -race"
go test -race -count=1 -timeout 12m ./...

if [[ -n ${FUZZTIME:-} ]]; then
	echo "== fuzzing each target for $FUZZTIME"
	for pkg in $(go list ./...); do
		for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
			echo "-- $pkg $target"
			go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 200x "$pkg"
		done
	done
fi
echo "== all tests passed"
