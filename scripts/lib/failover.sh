# shellcheck shell=bash
# failover.sh: helpers of scripts/bench-failover.sh: a counter sampler, the
# awk analysis of goodput timelines, the ping and counter parsers, and the
# temporary kernel-MPTCP set-up of the client and server namespaces.
# Source it after scripts/lib/testbed.sh. Definitions: docs/FAILOVER.md.
#
# Timelines are lines "t=END mbps=RATE" (btperf -i), END in seconds since
# the receiver's time zero; consecutive lines cover consecutive intervals.

fo_log() { printf '[failover] %s\n' "$*" >&2; }

# fo_now: wall-clock seconds with microseconds (no fork).
fo_now() { printf '%s\n' "$EPOCHREALTIME"; }

# fo_sleep_until EPOCH: sleep until the wall clock reaches EPOCH (seconds).
fo_sleep_until() {
	local d
	d=$(awk -v t="$1" -v n="$EPOCHREALTIME" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
	sleep "$d"
}

# fo_median: the median of the numbers on stdin ("none" if there are none).
fo_median() {
	awk '{ v[n++] = $1 }
	END {
		if (n == 0) { print "none"; exit }
		for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j+1] = v[j]; v[j+1] = x }
		m = (n % 2) ? v[int(n/2)] : (v[n/2-1] + v[n/2]) / 2
		print m
	}'
}

# fo_sampler NS OUT DEV...: in the background, append "EPOCH RXBYTES" to OUT
# every 50 ms, RXBYTES being the sum of the devices' rx_bytes in namespace
# NS (a missing device counts 0). Sets FO_SAMPLER to its PID (one bash in
# the namespace; kill it with kill "$FO_SAMPLER").
fo_sampler() {
	local ns=$1 out=$2
	shift 2
	# shellcheck disable=SC2016 # expanded by the inner shell
	ip netns exec "$ns" bash -c '
		out=$1; shift
		while :; do
			s=0
			for d in "$@"; do
				b=0
				read -r b <"/sys/class/net/$d/statistics/rx_bytes" 2>/dev/null || b=0
				s=$((s + b))
			done
			printf "%s %s\n" "$EPOCHREALTIME" "$s"
			sleep 0.05
		done >>"$out"' fo-sampler "$out" "$@" &
	# shellcheck disable=SC2034 # read by the caller
	FO_SAMPLER=$!
}

# fo_counter_timeline T0 <SAMPLES: turn sampler lines into a timeline
# "t=END mbps=RATE" with time zero at epoch T0 (a fall-back when btperf
# reports nothing; it counts inner or outer header bytes too). A counter
# that goes backwards (device re-created) counts as 0.
fo_counter_timeline() {
	awk -v t0="$1" '
	n++ > 0 && $1 > t0 {
		d = $2 - b; if (d < 0) d = 0
		s = (e > t0) ? e : t0
		if ($1 - s > 0) printf "t=%.3f mbps=%.3f\n", $1 - t0, d * 8 / 1e6 / ($1 - e)
	}
	{ e = $1; b = $2 }'
}

# fo_analyze CUT SURV T BIN [PRE_END] <TIMELINE: the failover numbers of one run.
#   CUT   the cut on the timeline's axis (s);  SURV the surviving link's own
#   goodput (Mbit/s);  T the test duration (s);  BIN the printed interval (s);
#   PRE_END the nominal cut time, end of the pre-cut window [8].
# Prints the BIN-second intervals as "iv START END MBPS" lines, then
#   "res before=PRE after=AFTER stall_s=STALL recover_s=REC"
# with, precisely (docs/FAILOVER.md):
#   pre-cut rate  median of the BIN intervals starting in [3 s, PRE_END);
#   recover_s     from the cut to the start of the first run of >= 2
#                 consecutive BIN intervals, starting with the one holding the
#                 cut or later and ending by T, each >= 50 % of SURV;
#                 max(0, start - CUT); "none" if there is no such run;
#   stall_s       the total time after the cut, up to the end of the first
#                 interval of that run (or T, or the timeline's end), in the
#                 timeline's own (finer) intervals with goodput < 10 % of the
#                 pre-cut rate;
#   after         median of the BIN intervals starting in [CUT+4 s, T-0.5 s).
# Any number that has no data is "none".
fo_analyze() {
	awk -v cut="$1" -v surv="$2" -v T="$3" -v bin="$4" -v pe="${5:-8}" '
	function med(a, n,    i, j, x, v) {
		if (n == 0) return "none"
		for (i = 0; i < n; i++) v[i] = a[i]
		for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j+1] = v[j]; v[j+1] = x }
		return (n % 2) ? v[int(n/2)] : (v[n/2-1] + v[n/2]) / 2
	}
	{
		t = $1; r = $2; sub(/^t=/, "", t); sub(/^mbps=/, "", r)
		s[n] = prev; e[n] = t + 0; m[n] = r + 0; prev = t + 0; n++
	}
	END {
		# Aggregate into BIN intervals by start time, weighted by duration.
		nb = 0
		for (i = 0; i < n; i++) {
			k = int(s[i] / bin + 1e-6)
			if (!(k in bd)) { bk[nb++] = k; bs[k] = s[i] }
			bd[k] += e[i] - s[i]; bb[k] += m[i] * (e[i] - s[i]); be[k] = e[i]
		}
		np = 0; na = 0
		for (j = 0; j < nb; j++) {
			k = bk[j]; r = bd[k] > 0 ? bb[k] / bd[k] : 0; br[k] = r
			printf "iv %.2f %.2f %.2f\n", bs[k], be[k], r
			if (bs[k] >= 3 - 1e-6 && bs[k] < pe - 1e-6) pre[np++] = r
			if (bs[k] >= cut + 4 - 1e-6 && bs[k] < T - 0.5 - 1e-6) aft[na++] = r
		}
		before = med(pre, np); after = med(aft, na)
		# Only the test window counts: after T the sender has stopped and
		# the tail is queued data draining.
		rec = "none"; recend = (n > 0 && e[n-1] < T) ? e[n-1] : T
		for (j = 0; j + 1 < nb; j++) {
			k = bk[j]; k2 = bk[j+1]
			if (be[k] <= cut) continue
			if (be[k2] > T + 1e-6) break
			if (br[k] >= surv / 2 && br[k2] >= surv / 2) {
				rec = bs[k] - cut; if (rec < 0) rec = 0
				recend = be[k]
				rec = sprintf("%.2f", rec)
				break
			}
		}
		stall = "none"
		if (before != "none") {
			stall = 0
			for (i = 0; i < n; i++) {
				a = (s[i] > cut) ? s[i] : cut; b = (e[i] < recend) ? e[i] : recend
				if (b > a && m[i] < before / 10) stall += b - a
			}
			stall = sprintf("%.2f", stall)
			before = sprintf("%.1f", before)
		}
		if (after != "none") after = sprintf("%.1f", after)
		printf "res before=%s after=%s stall_s=%s recover_s=%s\n", before, after, stall, rec
	}'
}

# fo_ping_resume TCUT <PINGOUT: from `ping -D -n` output of pings started at
# the cut, the time from TCUT to the arrival of the first reply (traffic flows
# again), and how many pings sent after that reply's ping failed (of those
# that had 1 s to come back). Prints "RESUME LOSTAFTER" ("none 0" without any
# reply). Replies to pings sent before TCUT (more than 1 ms) are ignored.
fo_ping_resume() {
	awk -v tc="$1" '
	/icmp_seq=/ && /time=/ {
		st = $1; gsub(/[][]/, "", st)
		q = $0; sub(/.*icmp_seq=/, "", q); sub(/ .*/, "", q)
		rt = $0; sub(/.*time=/, "", rt); sub(/ .*/, "", rt)
		ok[q + 0] = 1
		if (st - rt / 1000 >= tc - 0.001 && (first == "" || st < first)) { first = st; fq = q + 0 }
	}
	/packets transmitted/ { tx = $1 + 0 }
	END {
		if (first == "") { print "none 0"; exit }
		lost = 0
		for (q = fq + 1; q <= tx - 20; q++) if (!(q in ok)) lost++
		printf "%.3f %d\n", first - tc, lost
	}'
}

# fo_log_event TCUT PATH <LOG: seconds from TCUT to the first slog line at or
# after it saying PATH (e.g. "cable→") turned suspect, dead or down; "none"
# if there is none. Log times are RFC 3339 UTC with milliseconds.
fo_log_event() {
	local tc=$1 pth=$2 line ts ep
	while IFS= read -r line; do
		[[ $line == *"msg=\"path "@(suspect|dead|down)\"* && $line == *"path=$pth"* ]] || continue
		ts=${line#time=}
		ts=${ts%% *}
		ep=$(date -u -d "$ts" +%s.%N 2>/dev/null) || continue
		if awk -v e="$ep" -v t="$tc" 'BEGIN { exit !(e >= t) }'; then
			awk -v e="$ep" -v t="$tc" 'BEGIN { printf "%.3f\n", e - t }'
			return
		fi
	done
	echo none
}

# fo_first_traffic TREST MBPS <SAMPLES: the time from TREST to the end of
# the first sampler gap after TREST that carried >= MBPS Mbit/s ("none").
fo_first_traffic() {
	awk -v tr="$1" -v thr="$2" '
	n++ > 0 && e >= tr && $1 > e {
		if (($2 - b) * 8 / 1e6 / ($1 - e) >= thr) { printf "%.3f\n", $1 - tr; found = 1; exit }
	}
	{ e = $1; b = $2 }
	END { if (!found) print "none" }'
}

# fo_mptcp_setup NSC NSS ADDR0 GW0 DEV0 ADDR1 GW1 DEV1: kernel MPTCP with one
# subflow per uplink. The client namespace has no default route, so each
# uplink address gets a policy table (FO_TABLE0/1, rules at the same
# priorities) sending it out its own uplink; the endpoint ADDR1 adds the
# second subflow to the server address the first one connected to.
FO_TABLE0=1701
FO_TABLE1=1702
fo_mptcp_setup() {
	local nsc=$1 nss=$2
	tb_run ip -n "$nsc" route add default via "$4" dev "$5" table "$FO_TABLE0" &&
		tb_run ip -n "$nsc" rule add from "$3" table "$FO_TABLE0" prio "$FO_TABLE0" &&
		tb_run ip -n "$nsc" route add default via "$7" dev "$8" table "$FO_TABLE1" &&
		tb_run ip -n "$nsc" rule add from "$6" table "$FO_TABLE1" prio "$FO_TABLE1" &&
		tb_run ip -n "$nsc" mptcp limits set subflow 2 add_addr_accepted 2 &&
		tb_run ip -n "$nsc" mptcp endpoint add "$6" dev "$8" subflow &&
		tb_run ip -n "$nss" mptcp limits set subflow 2 add_addr_accepted 2
}

# fo_mptcp_teardown NSC NSS: undo fo_mptcp_setup (the namespaces' defaults
# are subflow 2, add_addr_accepted 0). Safe to call more than once.
fo_mptcp_teardown() {
	local nsc=$1 nss=$2 t
	ip -n "$nsc" mptcp endpoint flush 2>/dev/null
	ip -n "$nsc" mptcp limits set subflow 2 add_addr_accepted 0 2>/dev/null
	ip -n "$nss" mptcp limits set subflow 2 add_addr_accepted 0 2>/dev/null
	for t in "$FO_TABLE0" "$FO_TABLE1"; do
		while ip -n "$nsc" rule del prio "$t" 2>/dev/null; do :; done
		ip -n "$nsc" route flush table "$t" 2>/dev/null
	done
	return 0
}

# fo_selftest: check the parsers and the analysis on synthetic input
# (no root, no network). Prints one line per failed check; returns 1 if any.
fo_selftest() {
	local bad=0 got
	# check NAME GOT WANT
	check() {
		if [[ $2 != "$3" ]]; then
			printf 'FAIL %s: got "%s", want "%s"\n' "$1" "$2" "$3"
			bad=1
		fi
	}
	# tl CUTOFF RECOVERY END: 60 Mbit/s until 7.95 s, 0 until RECOVERY, then 19.
	tl() { awk -v r="$1" -v end="$2" 'BEGIN { for (t = 0.1; t <= end + 0.05; t += 0.1)
		printf "t=%.2f mbps=%.1f\n", t, (t <= 7.95) ? 60 : ((t <= r) ? 0 : 19) }'; }
	got=$(tl 9.2 20 | fo_analyze 7.95 19 20 0.5 | sed -n 's/^res //p')
	check "recovery at 9.2 s" "$got" "before=60.0 after=19.0 stall_s=1.25 recover_s=1.05"
	got=$(tl 19.5 28 | fo_analyze 7.95 19 20 0.5 | sed -n 's/^res //p')
	check "recovery only after T" "$got" "before=60.0 after=0.0 stall_s=11.45 recover_s=none"
	got=$(tl 0 20 | fo_analyze 7.95 19 20 0.5 | sed -n 's/^res //p')
	check "seamless" "$got" "before=60.0 after=19.0 stall_s=0.00 recover_s=0.00"
	got=$(fo_analyze 7.95 19 20 0.5 </dev/null)
	check "empty timeline" "$got" "res before=none after=none stall_s=none recover_s=none"
	got=$(tl 9.2 20 | fo_analyze 7.95 19 20 0.5 | grep -c '^iv ')
	check "interval count" "$got" 40
	got=$(printf '3\n1\n2\n' | fo_median)-$(printf '4\n1\n2\n3\n' | fo_median)-$(fo_median </dev/null)
	check "median" "$got" "2-2.5-none"
	got=$(printf '1.0 100\n1.05 200\n1.10 50000\n1.15 90000\n' | fo_first_traffic 1.0 2)
	check "first traffic" "$got" "0.100"
	got=$(printf '1.0 100\n1.05 200\n' | fo_first_traffic 1.0 2)
	check "no traffic" "$got" "none"
	got=$(printf '0.95 0\n1.0 0\n1.05 625000\n1.10 500000\n' | fo_counter_timeline 1.0 | tr '\n' ' ')
	check "counter timeline" "$got" "t=0.050 mbps=100.000 t=0.100 mbps=0.000 "
	got=$(printf '%s\n' '[1000.500000] 64 bytes from 10.77.0.1: icmp_seq=8 ttl=64 time=22.0 ms' \
		'[1000.300000] 64 bytes from 10.77.0.1: icmp_seq=4 ttl=64 time=200.0 ms' \
		'100 packets transmitted, 2 received' | fo_ping_resume 1000.1)
	check "ping resume" "$got" "0.200 75"
	got=$(printf '%s\n' 'time=2026-11-24T22:40:48.000Z level=INFO msg="path up" peer=server path=cable→10.99.0.1:7350' \
		'time=2026-11-24T22:40:48.250Z level=INFO msg="path suspect" peer=server path=dsl→10.99.0.1:7350' \
		'time=2026-11-24T22:40:48.350Z level=INFO msg="path suspect" peer=server path=cable→10.99.0.1:7350' |
		fo_log_event "$(date -u -d 2026-11-24T22:40:48.100Z +%s.%N)" 'cable→')
	check "log event" "$got" "0.250"
	got=$(printf '100 packets transmitted, 0 received\n' | fo_ping_resume 1000.1)
	check "ping never" "$got" "none 0"
	return "$bad"
}
