#!/usr/bin/env bash
# The relay's egress data path on the host kernel, side by side in one run:
#   customer ns (10.64.0.2 on c0) ── wgx [relay ns] up0 ── internet ns (iperf3 server on 198.51.100.10)
# Each round measures, one after the other on the same path, iperf3 TCP throughput (one stream) and UDP packets/s
# (64-byte datagrams, sender unlimited, counted where they arrive) for:
#   plain    forwarding on, no ruleset (the internet ns routes the pool back: no NAT);
#   nat      conntrack and SNAT only (the relay's NAT rule, no filter): what stateful NAT costs by itself;
#   relay    the relay's ruleset (inet tabula_relay: MSS clamp, isolation lookups, conntrack, SNAT), 10 listed prefixes;
#   relay10k the same with 10 000 listed private prefixes.
# With a ruleset the internet ns has no route back to the pool, so a reply arrives only if SNAT worked; the
# forward chain's counters are checked to have counted the traffic. Rounds alternate the variants so they share the
# host's load; the ratios (variant / plain of the same round) are printed per round and as min–max (goal >= 0.9).
# Then the apply time (create, then an atomic replace) at 1 and 10 000 listed private prefixes, once per round.
# The rulesets are applied from C# over netlink by bench/Tabula.Egress.Bench (JIT; warmed up before timing).
#
#   bench/relay-egress.sh [SECONDS] [ROUNDS]      (root, ip, iperf3, python3; default 5 s per measurement, 3 rounds)
# NO_BUILD=1 skips building bench/Tabula.Egress.Bench (build it first when the machine's build lock must be held).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
for tool in ip iperf3 python3; do command -v $tool >/dev/null || { echo "missing $tool: run scripts/setup" >&2; exit 2; }; done
secs=${1:-5}; rounds=${2:-3}
bench=bench/Tabula.Egress.Bench/bin/Release/net10.0/Tabula.Egress.Bench
[ "${NO_BUILD:-0}" = 1 ] || dotnet build bench/Tabula.Egress.Bench -c Release --nologo -v quiet >&2
[ -x "$bench" ] || { echo "missing $bench: build bench/Tabula.Egress.Bench first" >&2; exit 2; }
r=tbegr$$; c=tbegc$$; i=tbegi$$
server=; work=$(mktemp -d)
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  for n in $r $c $i; do ip netns del $n 2>/dev/null || true; done
  rm -rf "$work"
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
# The relay's sysctls (forwarding, strict rp_filter on the uplink, no redirects) for every variant alike: a first
# apply sets them and they stay after the table is removed.
$bench apply $r up0 wgx 203.0.113.1 2001:db8:1::1 1 >/dev/null
$bench remove $r

ip netns exec $i iperf3 -s -B 198.51.100.10 >/dev/null 2>&1 & server=$!
sleep 1
tcp() { ip netns exec $c iperf3 -c 198.51.100.10 -t "$secs" -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])'; }
pps() { ip netns exec $c iperf3 -c 198.51.100.10 -u -b 0 -l 64 -t "$secs" -J | python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print((e["packets"]-e["lost_packets"])/e["seconds"])'; }
measure() { # measure VARIANT ROUND: one TCP and one UDP figure into $work/results
  echo "$2 $1 $(tcp) $(pps)" >> "$work/results"
}
with_ruleset() { # with_ruleset VARIANT ROUND APPLY-ARGS…: no route back to the pool, so only SNAT brings replies
  local variant=$1 round=$2; shift 2
  $bench "$@" >/dev/null
  ip -n $i route del 10.64.0.0/10 2>/dev/null || true
  measure "$variant" "$round"
  if [ "$variant" != nat ]; then
    forwarded=$($bench counters $r | sed -n 's/^forwarded_packets=\([0-9]*\) .*/\1/p')
    [ "${forwarded:-0}" -gt 1000 ] || { echo "the ruleset's forward counters saw ${forwarded:-no} packets" >&2; exit 1; }
  fi
  $bench remove $r
}

echo "# $(date -u +%FT%TZ) $(nproc) CPU, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r), iperf3 $(iperf3 --version | head -1 | cut -d' ' -f2), ${secs}s per measurement, $rounds rounds"
for round in $(seq 1 "$rounds"); do
  ip -n $i route replace 10.64.0.0/10 via 203.0.113.1
  measure plain "$round"
  with_ruleset nat "$round" nat-only $r up0 203.0.113.1
  with_ruleset relay "$round" apply $r up0 wgx 203.0.113.1 2001:db8:1::1 10
  with_ruleset relay10k "$round" apply $r up0 wgx 203.0.113.1 2001:db8:1::1 10000
  for n in 1 10000; do echo "$round $($bench apply $r up0 wgx 203.0.113.1 2001:db8:1::1 $n)" >> "$work/apply"; $bench remove $r; done
done

python3 - "$work/results" "$work/apply" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
plain = {r: (float(t), float(p)) for r, v, t, p in rows if v == "plain"}
print(f"{'round':<6}{'variant':<10}{'TCP Gbit/s':>11}{'ratio':>7}{'UDP kpps':>10}{'ratio':>7}")
ratios = {}
for r, v, t, p in rows:
    t, p = float(t), float(p)
    bt, bp = plain[r]
    print(f"{r:<6}{v:<10}{t/1e9:>11.2f}{t/bt:>7.2f}{p/1e3:>10.1f}{p/bp:>7.2f}")
    ratios.setdefault(v, []).append((t / bt, p / bp))
for v, rs in ratios.items():
    if v == "plain": continue
    tcp = [a for a, _ in rs]; udp = [b for _, b in rs]
    print(f"{v:<10} vs plain: TCP {min(tcp):.2f}-{max(tcp):.2f}x, UDP packets/s {min(udp):.2f}-{max(udp):.2f}x ({len(rs)} rounds; goal >= 0.9)")
apply = {}
for line in open(sys.argv[2]):
    f = dict(kv.split("=") for kv in line.split()[1:])
    apply.setdefault(int(f["prefixes"]), []).append((float(f["create_ms"]), float(f["replace_ms"])))
for n, ts in sorted(apply.items()):
    c = [a for a, _ in ts]; rp = [b for _, b in ts]
    print(f"apply {n:>5} prefixes: create {min(c):.1f}-{max(c):.1f} ms, replace {min(rp):.1f}-{max(rp):.1f} ms ({len(ts)} runs)")
PY
