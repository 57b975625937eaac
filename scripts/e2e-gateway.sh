#!/usr/bin/env bash
# e2e-gateway.sh: end-to-end test of a server gateway (docs/GATEWAY.md) with a whole-host
# client, over the emulated testbed of scripts/lib/testbed.sh plus a third namespace, the
# "internet", joined to the server by a veth pair:
#
#   client ns --(cable, dsl)--> server ns  wan0 192.0.2.1/24 2001:db8:2::1/64
#                                   |  veth
#                               inet ns    wan0 192.0.2.2/24 2001:db8:2::2/64
#                                          lo   198.51.100.7 2001:db8:7::7 (the "internet")
#
#                               inet ns    wan1 203.0.113.1/24
#                                   |  veth
#                               far ns     wan0 203.0.113.2/24 (a second client, "far")
#
# The internet has no route to the tunnel's addresses, so its answers reach the client only
# through the server's NAT. The second client reaches the server across the internet, by
# the server's default route, and its allowed_ips on the server cover its own outer
# address (203.0.113.0/24): only the fwmark on the server's sockets keeps the server's
# datagrams to it out of the tunnel (tun.fwmark, docs/DECISIONS.md). The client names the server by DNS name (gw-server.test,
# answered from /etc/netns/CLIENT_NS/hosts, which `ip netns exec` puts over /etc/hosts).
# Checks:
#   - the client reaches 198.51.100.7 (ping, a verified TCP transfer) and 2001:db8:7::7;
#   - a connection opened from the internet towards the client is refused;
#   - the far client's tunnel works although the server routes its outer address into the
#     tunnel: the server's marked traffic to it leaves by wan0, unmarked traffic enters bt0;
#   - both ends filter reverse paths strictly (rp_filter=1): the server marks what comes
#     in for its port and turns on src_valid_mark, so the far client's datagrams pass; the
#     clients need nothing; `check` says so on each side;
#   - after SIGTERM of the server, `bondtun down` of a running server, and `bondtun down`
#     after a SIGKILL, the server namespace's nft ruleset, rules, routes (every table) and
#     forwarding, src_valid_mark and rp_filter sysctls are exactly as before; after the
#     client's SIGTERM, the client's too.
# Prints "GW key=value" lines; exits non-zero on the first failed check. Needs root, nft.
set -euo pipefail
# (Never `cmd | grep -q` in this script: grep's early exit can kill cmd with SIGPIPE, a failure
# under pipefail; ip writes line by line.)
cd "$(dirname "$0")/.."
BIN=${BIN:-./bin}

# shellcheck source=lib/testbed.sh
source scripts/lib/testbed.sh
SFX=gw$$
WORK=$(mktemp -d /tmp/bondtun-gw.XXXXXX)
NS_I=bti-$SFX
NS_F=btf-$SFX
PIDS=()
fail() { tb_fail GW "$@"; }
cleanup() {
	tb_cleanup
	ip netns del "$NS_I" 2>/dev/null || true
	ip netns del "$NS_F" 2>/dev/null || true
	rm -rf "/etc/netns/btc-$SFX"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TB_DIR=$WORK LINKEMU=$BIN/linkemu tb_setup "$SFX" 2>"$WORK/testbed.log" || fail "testbed setup"
C="ip netns exec $TB_NS_C"
S="ip netns exec $TB_NS_S"
I="ip netns exec $NS_I"
F="ip netns exec $NS_F"
ip netns add "$NS_I"
ip netns add "$NS_F"
ip link add wan0 netns "$TB_NS_S" type veth peer name wan0 netns "$NS_I"
$S ip addr add 192.0.2.1/24 dev wan0
$S ip addr add 2001:db8:2::1/64 dev wan0 nodad
$S ip link set wan0 up
$S ip route add default via 192.0.2.2
$S ip -6 route add default via 2001:db8:2::2
$I ip link set lo up
$I ip addr add 198.51.100.7/32 dev lo
$I ip addr add 2001:db8:7::7/128 dev lo
$I ip addr add 192.0.2.2/24 dev wan0
$I ip addr add 2001:db8:2::2/64 dev wan0 nodad
$I ip link set wan0 up
ip link add wan1 netns "$NS_I" type veth peer name wan0 netns "$NS_F"
$I ip addr add 203.0.113.1/24 dev wan1
$I ip link set wan1 up
$I ip route add 10.99.0.1/32 via 192.0.2.1
$I sysctl -qw net.ipv4.ip_forward=1
$F ip link set lo up
$F ip addr add 203.0.113.2/24 dev wan0
$F ip link set wan0 up
# Strict reverse-path filtering on every interface of both ends (and the far client):
# the server must mark what comes in for its port (docs/DECISIONS.md "Strict rp_filter"),
# the clients need nothing.
for ns in "$TB_NS_S" "$TB_NS_C" "$NS_F"; do
	ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 1 >"$f"; done'
done
mkdir -p "/etc/netns/$TB_NS_C"
echo "10.99.0.1 gw-server.test" >"/etc/netns/$TB_NS_C/hosts"

# The server: the demo's, with IPv6 in the tunnel and a gateway out of wan0.
sed -e 's|addresses: \[10.77.0.1/24\]|addresses: [10.77.0.1/24, "fd77::1/64"]|' \
	-e 's|allowed_ips: \[10.77.0.2/32\]|allowed_ips: [10.77.0.2/32, "fd77::2/128"]|' configs/server.yaml >"$WORK/server.yaml"
printf 'gateway:\n  out: wan0\n' >>"$WORK/server.yaml"
# The client: whole host (everything into the tunnel), the server by name.
sed -e 's|addresses: \[10.77.0.2/24\]|addresses: [10.77.0.2/24, "fd77::2/64"]|' \
	-e 's|endpoint: 10.99.0.1:7350|endpoint: gw-server.test:7350|' \
	-e 's|allowed_ips: \[10.77.0.0/24\]|allowed_ips: [0.0.0.0/0, "::/0"]|' configs/client.yaml >"$WORK/client.yaml"
# The far client: one uplink across the internet; the server routes its outer network
# into the tunnel too.
FAR_KEY=$("$BIN/bondtun" genkey)
FAR_PUB=$("$BIN/bondtun" pubkey <<<"$FAR_KEY")
sed -e "s|^private_key: .*|private_key: \"$FAR_KEY\"|" \
	-e 's|addresses: \[10.77.0.2/24\]|addresses: [10.77.0.3/24]|' \
	-e '/^  - name: dsl/,/^    tier: primary/d' \
	-e 's|interface: up0|interface: wan0|' -e 's|address: 10.100.1.2|address: 203.0.113.2|' \
	-e 's|gateway: 10.100.1.1 .*|gateway: 203.0.113.1|' configs/client.yaml >"$WORK/far.yaml"
printf '  - name: far\n    public_key: "%s"\n    allowed_ips: [10.77.0.3/32, 203.0.113.0/24]\n' "$FAR_PUB" >"$WORK/far-peer.yaml"
sed -i -e "/^    allowed_ips: \[10.77.0.2\/32/r $WORK/far-peer.yaml" "$WORK/server.yaml"
grep -q '203.0.113.0/24' "$WORK/server.yaml" && grep -q 'address: 203.0.113.2' "$WORK/far.yaml" && ! grep -q 'interface: up1' "$WORK/far.yaml" ||
	fail "far client config edits did not apply"
chmod 600 "$WORK/far.yaml"
grep -q 'gw-server.test' "$WORK/client.yaml" && grep -q '::/0' "$WORK/client.yaml" && grep -q 'fd77::1' "$WORK/server.yaml" ||
	fail "config edits did not apply"
chmod 600 "$WORK/server.yaml" "$WORK/client.yaml"

# state NS: everything bondtun may change in a namespace.
state() {
	local ns="ip netns exec $1"
	echo "== nft"; $ns nft list ruleset
	echo "== rules"; $ns ip rule show; $ns ip -6 rule show
	echo "== routes"; $ns ip -4 route show table all; $ns ip -6 route show table all
	echo "== sysctl"; $ns sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.src_valid_mark
	$ns sh -c 'grep . /proc/sys/net/ipv4/conf/*/rp_filter'
}
same_state() { # NS BEFORE_FILE WHAT
	state "$1" >"$WORK/after.txt"
	diff -u "$2" "$WORK/after.txt" >"$WORK/diff.txt" || fail "$3 left $1 changed: $(cat "$WORK/diff.txt")"
}
# settled_state NS FILE [IFACE]: the state once the kernel is done with new interfaces
# (IPv6 link-local addresses come after DAD): no tentative address, IFACE's link-local
# address there, and two snapshots alike.
settled_state() {
	local i
	for ((i = 0; i < 50; i++)); do
		state "$1" >"$2"
		sleep 0.2
		if [[ -z $(ip -n "$1" -6 addr show tentative) ]] && state "$1" | cmp -s - "$2" &&
			{ [[ -z ${3:-} ]] || grep -q fe80 <<<"$(ip -n "$1" -6 addr show dev "$3")"; }; then
			return 0
		fi
	done
	fail "namespace $1 did not settle"
}
settled_state "$TB_NS_S" "$WORK/server-before.txt" wan0
settled_state "$TB_NS_C" "$WORK/client-before.txt"
$S "$BIN/bondtun" check -c "$WORK/server.yaml" >"$WORK/check.txt" 2>&1 || fail "check of the server: $(cat "$WORK/check.txt")"
grep -q 'strict reverse-path filtering (rp_filter=1) on .*wan0.*table ip bondtun_bt0.*src_valid_mark=1 (now 0)' "$WORK/check.txt" ||
	fail "check of the server does not say what it does about strict rp_filter: $(cat "$WORK/check.txt")"
$C "$BIN/bondtun" check -c "$WORK/client.yaml" >"$WORK/check.txt" 2>&1 || fail "check of the client: $(cat "$WORK/check.txt")"
grep -q 'strict reverse-path filtering (rp_filter=1) on .*up0.*nothing to do on a client' "$WORK/check.txt" ||
	fail "check of the client does not say it does nothing about strict rp_filter: $(cat "$WORK/check.txt")"

start_server() {
	$S "$BIN/bondtun" up -c "$WORK/server.yaml" 2>>"$WORK/server.log" &
	SERVER=$!
	PIDS+=("$SERVER")
}
wait_reach() { # ping through the tunnel to the internet
	local i
	for ((i = 0; i < 150; i++)); do
		$C ping -c1 -W1 198.51.100.7 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
start_server
$I "$BIN/btperf" server -l 198.51.100.7:5201 >"$WORK/btperf.log" 2>&1 &
PIDS+=($!)
sleep 0.3
$C "$BIN/bondtun" up -c "$WORK/client.yaml" 2>>"$WORK/client.log" &
CLIENT=$!
PIDS+=("$CLIENT")
wait_reach || fail "the client does not reach 198.51.100.7 through the gateway"
grep -q 'server name resolved.*gw-server.test.*10.99.0.1:7350' "$WORK/client.log" || fail "the client did not log resolving gw-server.test"
echo "GW resolved_name=yes"
loss=$($C ping -c 10 -i 0.05 198.51.100.7 | sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p')
[[ $loss == 0 ]] || fail "ping loss $loss% to 198.51.100.7"
echo "GW reach_ipv4=yes"
ok=no
for ((i = 0; i < 30; i++)); do
	if $C ping -6 -c1 -W1 2001:db8:7::7 >/dev/null 2>&1; then ok=yes; break; fi
	sleep 0.1
done
[[ $ok == yes ]] || fail "the client does not reach 2001:db8:7::7 through the gateway"
echo "GW reach_ipv6=yes"
out=$($C "$BIN/btperf" client -c 198.51.100.7:5201 -bytes 5000000 -verify -t 30s 2>&1) || fail "transfer to the internet: $out"
grep -q 'verified=yes' <<<"$out" || fail "transfer not verified: $out"
echo "GW transfer ${out##*RESULT }"
# The internet sees the server's address, never the tunnel's: it has no route back, so
# the ping above proves NAT; and what the internet opens towards a peer is refused.
$I ip route add 10.77.0.0/24 via 192.0.2.1
if $I ping -c2 -W1 10.77.0.2 >/dev/null 2>&1; then fail "the internet reached the client behind the NAT"; fi
$I ip route del 10.77.0.0/24 via 192.0.2.1
echo "GW inbound_refused=yes"

# The far client, whose outer address the server routes into the tunnel.
[[ $($S ip route get 203.0.113.2 | grep -o 'dev [^ ]*') == "dev bt0" ]] || fail "the server does not route 203.0.113.2 into the tunnel (the test tests nothing)"
[[ $($S ip route get 203.0.113.2 mark 0x1cb5 | grep -o 'dev [^ ]*') == "dev wan0" ]] || fail "the server's marked traffic to 203.0.113.2 does not leave by wan0: $($S ip route get 203.0.113.2 mark 0x1cb5)"
# Strict filtering drops an unmarked datagram from the far client (its reverse path is the
# tunnel) and passes a marked one; the server's table marks them.
if $S ip route get 10.99.0.1 from 203.0.113.2 iif wan0 >/dev/null 2>&1; then fail "strict rp_filter passes the far client's unmarked datagrams (the test tests nothing)"; fi
$S ip route get 10.99.0.1 from 203.0.113.2 iif wan0 mark 0x1cb5 >/dev/null || fail "strict rp_filter drops the far client's marked datagrams"
grep -q 'th dport 7350 ip daddr 10.99.0.1 meta mark set 0x00001cb5' <<<"$($S nft list table ip bondtun_bt0)" || fail "no reverse-path marks: $($S nft list ruleset)"
echo "GW rpf_marks=yes"
$F "$BIN/bondtun" up -c "$WORK/far.yaml" 2>>"$WORK/far.log" &
FAR=$!
PIDS+=("$FAR")
ok=no
for ((i = 0; i < 150; i++)); do
	if $F ping -c1 -W1 10.77.0.1 >/dev/null 2>&1; then ok=yes; break; fi
	sleep 0.1
done
[[ $ok == yes ]] || fail "the far client's tunnel does not work (its outer address is inside its allowed_ips): $(tail -5 "$WORK/far.log")"
$I timeout 2 ping -c1 -W1 203.0.113.2 >/dev/null || fail "inet cannot reach the far client"
loss=$($F ping -c 10 -i 0.05 10.77.0.1 | sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p')
[[ $loss == 0 ]] || fail "ping loss $loss% through the far client's tunnel"
echo "GW far_client_outer_inside_allowed_ips=yes"
kill -TERM "$FAR"
wait "$FAR" || fail "far client exited with status $? on SIGTERM"
tb_forget "$FAR"

kill -TERM "$SERVER"
wait "$SERVER" || fail "server exited with status $? on SIGTERM"
tb_forget "$SERVER"
same_state "$TB_NS_S" "$WORK/server-before.txt" "the server's SIGTERM"
echo "GW sigterm_clean=yes"

start_server
wait_reach || fail "the client did not come back after the server's restart"
out=$($S "$BIN/bondtun" down -c "$WORK/server.yaml") || fail "bondtun down of a running server: $out"
grep -q 'stopped the running bondtun up' <<<"$out" || fail "down did not stop the server: $out"
wait "$SERVER" || true
tb_forget "$SERVER"
same_state "$TB_NS_S" "$WORK/server-before.txt" "bondtun down of a running server"
echo "GW down_clean=yes"

start_server
wait_reach || fail "the client did not come back after the second restart"
kill -KILL "$SERVER"
wait "$SERVER" 2>/dev/null || true
tb_forget "$SERVER"
grep -q 'table inet bondtun_bt0' <<<"$($S nft list tables)" || fail "no table left after SIGKILL (the test tests nothing)"
grep -q 'not from all fwmark 0x1cb5 lookup 7349' <<<"$($S ip rule show)" || fail "no tunnel rule left after SIGKILL (the test tests nothing): $($S ip rule show)"
[[ $($S sysctl -n net.ipv4.ip_forward) == 1 ]] || fail "forwarding off after SIGKILL (the test tests nothing)"
grep -q 'table ip bondtun_bt0' <<<"$($S nft list tables)" || fail "no reverse-path marks left after SIGKILL (the test tests nothing)"
[[ $($S sysctl -n net.ipv4.conf.all.src_valid_mark) == 1 ]] || fail "src_valid_mark off after SIGKILL (the test tests nothing)"
$S "$BIN/bondtun" down -c "$WORK/server.yaml" >/dev/null || fail "bondtun down after SIGKILL"
same_state "$TB_NS_S" "$WORK/server-before.txt" "bondtun down after the server's SIGKILL"
echo "GW crash_clean=yes"

kill -TERM "$CLIENT"
wait "$CLIENT" || fail "client exited with status $? on SIGTERM"
tb_forget "$CLIENT"
same_state "$TB_NS_C" "$WORK/client-before.txt" "the client's SIGTERM"
echo "GW client_clean=yes"
echo "GW PASS"
