#!/usr/bin/env bash
# Benchmark (not a test): what init_on_alloc costs the relay, measured in the lab (issue 15). Each run is a whole
# `tabula lab up --relays 1 --json` (stboot → signed relay package → the agent enrolls → staff deploy → serving →
# a customer's handshake) followed by traffic through the tunnel, with the relay package's kernel command line as the
# only difference; the variants alternate run by run so they share the same host load. Both keep init_on_free=1 (the
# image builder refuses a relay command line without it); Debian 12's kernel has CONFIG_INIT_ON_ALLOC_DEFAULT_ON=y,
# so "off" must say init_on_alloc=0. TCG on shared cores: compare the variants, not the absolute figures.
#
#   flock /work/qemu.lock bench/relay-init-on-alloc.sh [rounds]     (root; default 2 rounds = 4 lab runs)
#
# Per run: boot = the agent's enrollment line minus stboot's kexec line (the relay kernel and the agent up to
# enrolled); serve = staff's deploy call → the agent serving; first = device added → first ping through the tunnel;
# ping = mean round trip of PINGS pings (1200 bytes, back to back) to the relay's gateway through the tunnel (WireGuard
# decrypt, ICMP, encrypt in the guest: every packet allocates and frees skbs); http = GET /bytes/HTTP_BYTES from the
# echo host through the relay in MB/s, only when the relay NATs (egress_ipv4 set), else "-".
# Environment: BENCH_DIR (lab folder, default .tabula/bench-init-on-alloc), PINGS (500), HTTP_BYTES (20000000).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-2}
dir=${BENCH_DIR:-$root/.tabula/bench-init-on-alloc}
pings=${PINGS:-500}
http_bytes=${HTTP_BYTES:-20000000}
base="console=ttyS0,115200 panic=-1 quiet init_on_free=1"
[ "$(id -u)" = 0 ] || { echo "needs root (the lab: namespace, taps, QEMU)" >&2; exit 2; }
for tool in jq curl ping; do command -v $tool >/dev/null || { echo "missing $tool" >&2; exit 2; }; done
tabula="$root/tabula"
"$tabula" --help >/dev/null
mkdir -p "$(dirname "$dir")"
results=$(mktemp)
trap '"$tabula" lab down --dir "$dir" >/dev/null 2>&1 || true; rm -f "$results"' EXIT
echo "# $(date -u +%FT%TZ) $(nproc) CPU, load $(cut -d' ' -f1-3 /proc/loadavg), host $(uname -r), guest $(ls /boot/vmlinuz-* | sort -V | tail -1)" >&2

for round in $(seq 1 "$rounds"); do
  for variant in off on; do
    cmdline="$base init_on_alloc=$([ $variant = on ] && echo 1 || echo 0)"
    echo "== round $round, init_on_alloc $variant: $cmdline" >&2
    out=$("$tabula" lab up --relays 1 --json --dir "$dir" --relay-cmdline "$cmdline" 2>"$dir.log") || { echo "lab up failed, see $dir.log" >&2; exit 1; }
    ns=$(jq -r .client_namespace <<<"$out"); iface=$(jq -r '.relays[0].wireguard_interface' <<<"$out")
    # -f: the next ping leaves when the reply arrives, so the mean round trip is the relay's per-packet cost.
    ping_ms=$(ip netns exec "$ns" ping -f -q -I "$iface" -c "$pings" -s 1200 -w 120 10.64.0.1 | sed -n 's|^rtt [^=]*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
    http=-
    if [ "$(jq -r '.relays[0].egress_ipv4 // empty' <<<"$out")" != "" ]; then
      echo_host=$(jq -r .internet.echo.ipv4 <<<"$out"); port=$(jq -r .internet.echo.http_port <<<"$out")
      http=$(ip netns exec "$ns" curl -sS -o /dev/null --interface "$iface" --max-time 300 -w '%{speed_download}' \
        "http://$echo_host:$port/bytes/$http_bytes" | awk '{ printf "%.2f", $1 / 1e6 }')
    fi
    jq -r --arg v "$variant" --arg r "$round" --arg p "${ping_ms:-nan}" --arg h "$http" \
      '.relays[0] as $x | [$r, $v, ($x.timeline.enrolled_at - $x.timeline.kexec_at), $x.timeline.deploy, $x.timeline.first_handshake,
        $p, $h, ($x.handshake and $x.ping)] | @tsv' <<<"$out" >> "$results"
    "$tabula" lab down --dir "$dir" >/dev/null
  done
done

printf '%-6s %-14s %8s %8s %10s %8s %9s %10s %s\n' round init_on_alloc boot_s serve_s boot+serve first_s ping_ms http_MB/s ok
awk -F'\t' '{ printf "%-6s %-14s %8.1f %8.1f %10.1f %8.1f %9s %10s %s\n", $1, $2, $3, $4, $3 + $4, $5, $6, $7, ($8 == "true") ? "yes" : "NO" }' "$results"
awk -F'\t' '{ s[$2] += $3 + $4; p[$2] += $6; n[$2]++ }
  END { for (v in s) printf "mean init_on_alloc=%s: boot+serve %.1f s, ping %.2f ms (%d runs)\n", v, s[v] / n[v], p[v] / n[v], n[v] }' "$results"
