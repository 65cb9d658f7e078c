#!/usr/bin/env bash
# The relay's egress data path on the host kernel, side by side in one run:
#   customer ns (10.64.0.2 on c0) ── wgx [relay ns] up0 ── internet ns (iperf3 server on 198.51.100.10)
# 1. forwarding with no ruleset: iperf3 TCP throughput and UDP packets/s (64-byte datagrams);
# 2. the same path through the relay's ruleset (inet tabula_relay: isolation lookups, conntrack, MSS clamp, SNAT),
#    applied from C# over netlink by bench/Tabula.Egress.Bench; prints the ratios (goal >= 0.9);
# 3. apply time (create, then an atomic replace) at 1 and 10 000 listed private prefixes.
# Needs root, ip, iperf3 (scripts/setup). Usage: bench/relay-egress.sh [SECONDS]   (default 5 per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
for tool in ip iperf3; do command -v $tool >/dev/null || { echo "missing $tool: run scripts/setup" >&2; exit 2; }; done
secs=${1:-5}
dotnet build bench/Tabula.Egress.Bench -c Release --nologo -v quiet >&2
bench=bench/Tabula.Egress.Bench/bin/Release/net10.0/Tabula.Egress.Bench
r=tbegr$$; c=tbegc$$; i=tbegi$$
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  for n in $r $c $i; do ip netns del $n 2>/dev/null || true; done
}
trap cleanup EXIT
for n in $r $c $i; do ip netns add $n; ip -n $n link set lo up; done
ip -n $r link add wgx type veth peer name c0 netns $c
ip -n $r addr add 10.64.0.1/10 dev wgx; ip -n $r link set wgx up
ip -n $c addr add 10.64.0.2/10 dev c0; ip -n $c link set c0 up; ip -n $c route add default via 10.64.0.1
ip -n $r link add up0 type veth peer name i0 netns $i
ip -n $r addr add 203.0.113.1/24 dev up0; ip -n $r addr add 2001:db8:1::1/64 dev up0 nodad; ip -n $r link set up0 up
ip -n $r route add default via 203.0.113.2
ip -n $i addr add 203.0.113.2/24 dev i0; ip -n $i link set i0 up; ip -n $i addr add 198.51.100.10/32 dev lo
ip -n $i route add 10.64.0.0/10 via 203.0.113.1   # the baseline has no NAT: replies route back to the pool
ip netns exec $r sysctl -qw net.ipv4.ip_forward=1

ip netns exec $i iperf3 -s -B 198.51.100.10 >/dev/null 2>&1 & server=$!
sleep 1
tcp() { ip netns exec $c iperf3 -c 198.51.100.10 -t "$secs" -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])'; }
pps() { ip netns exec $c iperf3 -c 198.51.100.10 -u -b 0 -l 64 -t "$secs" -J | python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print((e["packets"]-e["lost_packets"])/e["seconds"])'; }

base_tcp=$(tcp); base_pps=$(pps)
$bench apply $r up0 wgx 203.0.113.1 2001:db8:1::1 10 >/dev/null
rule_tcp=$(tcp); rule_pps=$(pps)
ip netns exec $r nft list table inet tabula_relay | grep -c counter >/dev/null
python3 - "$base_tcp" "$rule_tcp" "$base_pps" "$rule_pps" <<'PY'
import sys
bt, rt, bp, rp = map(float, sys.argv[1:])
print(f"tcp  no ruleset {bt/1e9:7.2f} Gbit/s   ruleset {rt/1e9:7.2f} Gbit/s   ratio {rt/bt:.2f}")
print(f"udp  no ruleset {bp/1e3:7.1f} kpps     ruleset {rp/1e3:7.1f} kpps     ratio {rp/bp:.2f}")
PY
$bench remove $r
for n in 1 10000; do $bench apply $r up0 wgx 203.0.113.1 2001:db8:1::1 $n; $bench remove $r; done
