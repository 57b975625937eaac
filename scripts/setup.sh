#!/usr/bin/env bash
# setup.sh: install what bondtun's demo, tests and benchmarks need on a Debian
# machine (run as root: iproute2, ping, nftables), and fetch the Go modules. Idempotent and quiet when
# everything is there already.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
	echo "setup.sh: Go is not installed; bondtun needs Go >= 1.26 (https://go.dev/dl/)" >&2
	exit 1
fi

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
# systemd-analyze verifies configs/bondtun@.service (cmd/bondtun's TestUnitFileVerifies,
# which skips without it): installed when running as root, else left out.
if ! command -v systemd-analyze >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
	need+=(systemd)
fi
# nft: a server's gateway (NAT) and its tests.
command -v nft >/dev/null 2>&1 || [[ -x /usr/sbin/nft ]] || need+=(nftables)
if [[ ${#need[@]} -gt 0 ]]; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "setup.sh: missing ${need[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "== installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
go mod download
