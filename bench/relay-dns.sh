#!/usr/bin/env bash
# The relay's in-tunnel resolver (src/Tabula.Relay/Dns) against Debian's unbound configured as a plain forwarder, side
# by side in one run, same namespaces, same upstream (dnsmasq), same load (dnsperf, bounded in rate and time):
#   cached     100 names asked over and over after one warm-up pass: answered from the resolver's cache
#   forwarded  a fresh name per query (each resolver gets its own prefix): every query goes upstream
# Topology (namespaces made here, deleted on exit):  client 10.64.0.2 ── relay 10.64.0.1 ── upstream 198.51.100.53
# Both resolvers listen on the gateway address only, answer the pool only, keep no log (unbound: its built-in
# NXDOMAIN zone for the RFC 6761 name "test." is turned off so that both forward the same names).
#
# Needs root, ip, dnsmasq, dig (scripts/setup), and unbound + dnsperf, which scripts/apt-packages leaves out because
# only this benchmark uses them: apt-get install unbound dnsperf (then stop the unbound service it starts).
# Usage: bench/relay-dns.sh [SECONDS per run, default 15] [MAX QPS, default 40000]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
for tool in ip dnsmasq unbound dnsperf dig; do command -v $tool >/dev/null || [ -x /usr/sbin/$tool ] || { echo "missing $tool: apt-get install unbound dnsperf (the rest: scripts/setup)" >&2; exit 2; }; done
seconds=${1:-15}
maxqps=${2:-40000}

dotnet build bench/Tabula.Relay.Dns.Bench -c Release --nologo -v quiet >&2
ours=bench/Tabula.Relay.Dns.Bench/bin/Release/net10.0/Tabula.Relay.Dns.Bench.dll
r=tbdnsr-$$ c=tbdnsc-$$ u=tbdnsu-$$
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for ns in $r $c $u; do ip netns del $ns 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
for ns in $r $c $u; do ip netns add $ns; ip -n $ns link set lo up; done
ip -n $r link add rc type veth peer name cr netns $c
ip -n $r link add ru type veth peer name ur netns $u
ip -n $r addr add 10.64.0.1/10 dev rc; ip -n $r -6 addr add fc00:bbbb:bbbb:bb01::1/64 dev rc nodad
ip -n $c addr add 10.64.0.2/10 dev cr
ip -n $r addr add 198.51.100.1/24 dev ru
ip -n $u addr add 198.51.100.53/24 dev ur
for l in "$r rc" "$r ru" "$c cr" "$u ur"; do set -- $l; ip -n $1 link set $2 up; done

ip netns exec $u dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=198.51.100.53 \
  --port=53 --user=root --pid-file="$work/dnsmasq.pid" --local-ttl=3600 --dns-forward-max=1000 \
  --address=/bench.test/198.51.100.7 2>/dev/null &
pids+=($!)

for i in $(seq 1 100); do echo "c$i.bench.test A"; done >"$work/cached"
wait_ready() { # wait_ready LOG: until the gateway answers (bounded: 10 s); on failure prints the server's output
  for _ in $(seq 1 100); do
    ip netns exec $c dig +time=1 +tries=1 +short @10.64.0.1 ready.bench.test A 2>/dev/null | grep -q 198.51.100.7 && return 0
    sleep 0.1
  done
  echo "resolver did not come up:" >&2; cat "$1" >&2
  ip netns exec $c dig +time=1 +tries=1 @10.64.0.1 ready.bench.test A >&2 || true
  return 1
}
perf() { # perf FILE EXTRA…: prints "qps lost"
  ip netns exec $c dnsperf -s 10.64.0.1 -d "$1" -l "$seconds" -c 8 -q 200 -Q "$maxqps" -t 2 "${@:2}" >"$work/perf" 2>&1 || true
  awk '/Queries per second/{q=$4} /Queries lost/{l=$3} END{printf "%s %s", q, l}' "$work/perf"
}
run() { # run NAME PREFIX: the two loads against whatever serves 10.64.0.1 now
  local name=$1 prefix=$2
  seq 1 $((seconds * maxqps + 1000)) | sed "s/.*/$prefix&.bench.test A/" >"$work/fresh"
  perf "$work/cached" -l 2 >/dev/null          # warm-up: every cached name asked at least once
  read -r cq cl <<<"$(perf "$work/cached")"
  read -r fq fl <<<"$(perf "$work/fresh" -n 1)"
  printf "| %-28s | %12s | %8s | %12s | %8s |\n" "$name" "$cq" "$cl" "$fq" "$fl"
}

echo "# $(date -u +%FT%TZ) $(nproc) CPU, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r), dotnet $(dotnet --version), unbound $(dpkg-query -W -f='${Version}' unbound), dnsperf $(dpkg-query -W -f='${Version}' dnsperf), ${seconds}s per run, at most ${maxqps} q/s, 8 clients, 200 outstanding"
echo "| resolver                     | cached q/s   | lost     | forwarded q/s | lost    |"
echo "|---|---:|---:|---:|---:|"

ip netns exec $r dotnet "$ours" --upstream 198.51.100.53:53 --seconds 600 >"$work/ours.out" 2>&1 &
ourpid=$!; pids+=($ourpid)
wait_ready "$work/ours.out"
run "tabula-relay DnsForwarder" o
kill -TERM $ourpid; wait $ourpid 2>/dev/null || true
echo "# ours: $(tr '\n' ' ' <"$work/ours.out")"

cat >"$work/unbound.conf" <<CONF
server:
  interface: 10.64.0.1
  interface: fc00:bbbb:bbbb:bb01::1
  port: 53
  access-control: 0.0.0.0/0 refuse
  access-control: ::/0 refuse
  access-control: 10.64.0.0/10 allow
  access-control: fc00:bbbb:bbbb:bb01::/64 allow
  num-threads: 2
  so-reuseport: yes
  verbosity: 0
  use-syslog: no
  logfile: ""
  log-queries: no
  log-replies: no
  log-servfail: no
  chroot: ""
  username: ""
  directory: "$work"
  pidfile: "$work/unbound.pid"
  module-config: "iterator"
  local-zone: "test." nodefault
  do-not-query-localhost: no
  cache-max-ttl: 86400
  cache-max-negative-ttl: 3600
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: 198.51.100.53
CONF
ip netns exec $r unbound -d -c "$work/unbound.conf" >"$work/unbound.out" 2>&1 &
unpid=$!; pids+=($unpid)
wait_ready "$work/unbound.out"
run "unbound (forwarder, 2 threads)" b
echo "# unbound peak RSS: $(grep VmHWM /proc/$unpid/status | tr -s ' ')"
