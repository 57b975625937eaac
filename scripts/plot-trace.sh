#!/usr/bin/env bash
# plot-trace.sh: draws a bondtun flight-recorder trace (`bondtun status --trace FILE`)
# as an SVG chart with cmd/bttrace; see docs/TRACE.md for reading it.
#
#   scripts/plot-trace.sh TRACE.csv [OUT.svg]      OUT defaults to TRACE with .svg
#
# Prints the path of the SVG written.
set -euo pipefail
if [[ $# -lt 1 || $# -gt 2 ]]; then
	echo "usage: scripts/plot-trace.sh TRACE.csv [OUT.svg]" >&2
	exit 2
fi
trace=$(realpath "$1")
out=${2:-${1%.csv}.svg}
out=$(realpath -m "$out")
cd "$(dirname "$0")/.."
go run ./cmd/bttrace -o "$out" "$trace"
echo "$out"
