# shellcheck shell=bash
# version.sh: build bondtun's commands with their version stamped in, as `bondtun --version`
# prints it. Source it from the repository root, then use bt_build where `go build` was.

# bt_version [REV]: `git describe --always --dirty` of the checkout (of REV when given, for a
# tree exported with git archive); empty outside a git checkout.
bt_version() {
	if [[ -n ${1:-} ]]; then
		git describe --always "$1" 2>/dev/null || true
	else
		git describe --always --dirty 2>/dev/null || true
	fi
}

# bt_build ARGS...: `go build ARGS` with -X main.version=VERSION (BT_VERSION if set, else
# bt_version). Without a version the binary falls back to what the toolchain recorded (the
# VCS revision or module version; cmd/bondtun/version.go).
bt_build() {
	local v=${BT_VERSION:-$(bt_version)}
	if [[ -n $v ]]; then
		go build -ldflags "-X main.version=$v" "$@"
	else
		go build "$@"
	fi
}
