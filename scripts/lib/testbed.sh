# shellcheck shell=bash
# testbed.sh: build and tear down bondtun's two-uplink demo topology (and an
# optional third uplink, "lte", when LTE_RATE is set).
# Source it, then call tb_setup SUFFIX ... tb_teardown. Needs root.
#
#   namespace btc-$SFX (client)                     namespace bts-$SFX (server)
#   +------------------------+   linkemu "cable"   +-----------------------------+
#   | up0 10.100.1.2/24      |<===================>| link0 10.100.1.1/24         |
#   |                        |  50mbit, 10ms 1-way |                             |
#   | up1 10.100.2.2/24      |<===================>| link1 10.100.2.1/24         |
#   | (no default route)     |   linkemu "dsl"     | lo 10.99.0.1/32 (public)    |
#   +------------------------+  20mbit, 30ms 1-way +-----------------------------+
#   optional, only with LTE_RATE set:
#     up2 10.100.3.2/24 <=== linkemu "lte" ===> link2 10.100.3.1/24
#
# Environment (defaults in brackets):
#   LINKEMU        emulator binary [./bin/linkemu]
#   CABLE_RATE [50mbit] CABLE_DELAY [10ms] CABLE_JITTER [0s] CABLE_LOSS [0] CABLE_QUEUE [auto]
#   DSL_RATE   [20mbit] DSL_DELAY   [30ms] DSL_JITTER   [0s] DSL_LOSS   [0] DSL_QUEUE   [auto]
#   LTE_RATE   [unset: no third link] LTE_DELAY [40ms] LTE_JITTER [0s] LTE_LOSS [0] LTE_QUEUE [auto]
#   CABLE_ARGS, DSL_ARGS, LTE_ARGS  extra linkemu flags, e.g. "-rate-ba 5mbit" (the
#                  server->client, i.e. download, rate), "-jitter-dist normal",
#                  "-queue-ba 60000"
#   TB_DIR         where emulator logs go [/tmp/testbed-$SFX]
#   TB_DEFER_DSL   set: tb_setup leaves the DSL link out; tb_add_dsl adds it later
#   TB_RTPRIO      SCHED_FIFO priority of the emulators, 0 = normal [10]
#
# After tb_setup: TB_NS_C, TB_NS_S (namespace names), TB_CTL_cable, TB_CTL_dsl
# (control sockets; TB_CTL_lte too with the third link), TB_LINKS (the link
# names set up, in order), TB_PIDS (emulator PIDs). tb_ctl LINK COMMAND...
# talks to an emulator, e.g. `tb_ctl dsl cut both`.

TB_PIDS=()
TB_LINKS=()

tb_log() { printf '[testbed] %s\n' "$*" >&2; }

# tb_run CMD...: run a command, logging it first.
tb_run() { tb_log "+ $*"; "$@"; }

# tb_wait_socket PATH PID: wait up to 5 s for the emulator to create its socket.
tb_wait_socket() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -S $1 ]] && return 0
		kill -0 "$2" 2>/dev/null || { tb_log "emulator $2 exited"; return 1; }
		sleep 0.05
	done
	tb_log "timeout waiting for $1"
	return 1
}

# tb_link NAME DEV_C ADDR_C DEV_S ADDR_S RATE DELAY JITTER LOSS QUEUE EXTRA_ARGS
tb_link() {
	local name=$1 devc=$2 addrc=$3 devs=$4 addrs=$5 rate=$6 delay=$7 jitter=$8 loss=$9 queue=${10} extra=${11}
	local sock=/run/linkemu-$name-$TB_SFX.sock log=$TB_DIR/linkemu-$name.log
	# The emulator is a measuring instrument: it runs SCHED_FIFO so that other
	# work on a shared 2-core machine does not add delay to it (measured:
	# under load 15, time.Sleep overshoots p99 100 ms at nice -10, 0.1 ms at
	# SCHED_FIFO). It uses a fraction of a core, and the kernel's RT
	# throttling leaves the rest to others. TB_RTPRIO=0 disables this.
	local prio=()
	if [[ ${TB_RTPRIO:-10} != 0 ]] && chrt -f "${TB_RTPRIO:-10}" true 2>/dev/null; then
		prio=(chrt -f "${TB_RTPRIO:-10}")
	fi
	# shellcheck disable=SC2086 # extra args are split on purpose
	"${prio[@]}" "$LINKEMU" -ns-a "$TB_NS_C" -dev-a "$devc" -ns-b "$TB_NS_S" -dev-b "$devs" \
		-rate "$rate" -delay "$delay" -jitter "$jitter" -loss "$loss" -queue "$queue" \
		-ctl "$sock" $extra >"$log" 2>&1 &
	local pid=$!
	TB_PIDS+=("$pid")
	tb_log "linkemu $name pid $pid ${prio[*]}: $rate $delay jitter $jitter loss $loss% queue $queue $extra (log $log)"
	tb_wait_socket "$sock" "$pid" || { cat "$log" >&2; return 1; }
	printf -v "TB_CTL_$name" '%s' "$sock"
	TB_LINKS+=("$name")
	tb_run ip -n "$TB_NS_C" addr add "$addrc" dev "$devc" || return 1
	tb_run ip -n "$TB_NS_S" addr add "$addrs" dev "$devs" || return 1
}

# tb_setup SUFFIX: create the namespaces and start both emulators.
tb_setup() {
	TB_SFX=${1:?usage: tb_setup SUFFIX}
	TB_NS_C=btc-$TB_SFX
	TB_NS_S=bts-$TB_SFX
	TB_DIR=${TB_DIR:-/tmp/testbed-$TB_SFX}
	LINKEMU=${LINKEMU:-./bin/linkemu}
	[[ -x $LINKEMU ]] || { tb_log "no emulator binary at $LINKEMU (set LINKEMU)"; return 1; }
	mkdir -p "$TB_DIR" || return 1
	TB_LINKS=()
	unset TB_CTL_lte
	tb_run ip netns add "$TB_NS_C" || return 1
	tb_run ip netns add "$TB_NS_S" || { tb_teardown; return 1; }
	tb_run ip -n "$TB_NS_C" link set lo up &&
		tb_run ip -n "$TB_NS_S" link set lo up &&
		tb_run ip -n "$TB_NS_S" addr add 10.99.0.1/32 dev lo &&
		tb_link cable up0 10.100.1.2/24 link0 10.100.1.1/24 \
			"${CABLE_RATE:-50mbit}" "${CABLE_DELAY:-10ms}" "${CABLE_JITTER:-0s}" \
			"${CABLE_LOSS:-0}" "${CABLE_QUEUE:-auto}" "${CABLE_ARGS:-}" &&
		{ [[ -n ${TB_DEFER_DSL:-} ]] || tb_add_dsl; } ||
		{ tb_teardown; return 1; }
	if [[ -n ${LTE_RATE:-} ]]; then
		tb_link lte up2 10.100.3.2/24 link2 10.100.3.1/24 \
			"$LTE_RATE" "${LTE_DELAY:-40ms}" "${LTE_JITTER:-0s}" \
			"${LTE_LOSS:-0}" "${LTE_QUEUE:-auto}" "${LTE_ARGS:-}" ||
			{ tb_teardown; return 1; }
	fi
	return 0
}

# tb_add_dsl: start the DSL emulator, creating up1 and link1 with their addresses. tb_setup
# calls it, unless TB_DEFER_DSL is set: then the caller does, later (an uplink that
# appears after bondtun started, as a modem that syncs late).
tb_add_dsl() {
	tb_link dsl up1 10.100.2.2/24 link1 10.100.2.1/24 \
		"${DSL_RATE:-20mbit}" "${DSL_DELAY:-30ms}" "${DSL_JITTER:-0s}" \
		"${DSL_LOSS:-0}" "${DSL_QUEUE:-auto}" "${DSL_ARGS:-}"
}

# tb_ctl LINK COMMAND...: send a control command to emulator LINK (cable|dsl|lte).
tb_ctl() {
	local var=TB_CTL_$1
	shift
	"$LINKEMU" ctl "${!var:?unknown link}" "$@"
}

# tb_teardown: stop the emulators this shell started and delete the
# namespaces. Safe to call more than once.
tb_teardown() {
	local pid i
	for pid in "${TB_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || continue
		# Our own child is reaped by wait; otherwise poll for its exit.
		# (Every status is ignored, so that a caller under set -e survives.)
		wait "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	TB_PIDS=()
	[[ -n ${TB_NS_C:-} ]] && { ip netns del "$TB_NS_C" 2>/dev/null || true; }
	[[ -n ${TB_NS_S:-} ]] && { ip netns del "$TB_NS_S" 2>/dev/null || true; }
	if [[ -n ${TB_SFX:-} ]]; then
		rm -f "/run/linkemu-cable-$TB_SFX.sock" "/run/linkemu-dsl-$TB_SFX.sock" "/run/linkemu-lte-$TB_SFX.sock"
	fi
	TB_LINKS=()
	return 0
}

# tb_scenario NAME: export the link variables of scenario H (the defaults), E (2 x 100 Mbit/s
# 5 ms) or L (H with 1 % loss on DSL), leaving any CABLE_*/DSL_* already set alone; returns 1
# for an unknown name. (scripts/bench.sh sets every variable itself: its scenarios are fixed.)
tb_scenario() {
	case $1 in
	H) ;;
	E)
		export CABLE_RATE=${CABLE_RATE:-100mbit} CABLE_DELAY=${CABLE_DELAY:-5ms}
		export DSL_RATE=${DSL_RATE:-100mbit} DSL_DELAY=${DSL_DELAY:-5ms}
		;;
	L) export DSL_LOSS=${DSL_LOSS:-1} ;;
	*) return 1 ;;
	esac
}

# tb_cleanup: end the PIDs a script recorded in its PIDS array, tear the testbed down and
# remove its WORK directory. tb_cleanup_on_exit installs it for exit and Ctrl-C/TERM.
tb_cleanup() {
	set +e
	local pid
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	tb_teardown
	[[ -n ${WORK:-} ]] && rm -rf "$WORK"
	return 0
}
# tb_fail PREFIX MESSAGE...: print "PREFIX FAIL: MESSAGE" and the last 30 lines of every log
# in WORK on stderr, then exit 1 (the end-to-end scripts' fail).
tb_fail() {
	local prefix=$1 f
	shift
	echo "$prefix FAIL: $*" >&2
	for f in "$WORK"/*.log; do
		echo "--- $f" >&2
		tail -n 30 "$f" >&2
	done
	exit 1
}
# tb_forget PID: drop a PID we have waited for from the cleanup list (PIDS).
tb_forget() {
	local p keep=()
	for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}
# tb_stop PID: TERM, wait up to 5 s, then KILL; forget it.
tb_stop() {
	local i
	kill -TERM "$1" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	tb_forget "$1"
}
tb_cleanup_on_exit() {
	trap tb_cleanup EXIT
	trap 'exit 130' INT TERM
}
