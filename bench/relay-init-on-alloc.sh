#!/usr/bin/env bash
# Benchmark (not a test): what init_on_alloc costs the relay, measured in the lab (issue 15). Each run is a whole
# `tabula lab up --relays 1 --json` (stboot → signed relay package → the agent enrolls → staff deploy → serving →
# a customer's handshake), with the relay package's kernel command line as the only difference; the variants
# alternate run by run so they share the same host load. Both keep init_on_free=1 (the relay's default); the kernel
# of Debian 12 has CONFIG_INIT_ON_ALLOC_DEFAULT_ON=y, so "off" must say init_on_alloc=0.
#
#   sudo flock /work/qemu.lock bench/relay-init-on-alloc.sh [rounds]     (default 2 rounds = 4 lab runs)
#
# Per run: boot = QEMU start → the agent's enrollment line minus QEMU start → stboot's kexec line (the relay kernel and
# the agent up to enrolled); serve = staff's deploy call → the agent's `stage:serve` line; first = device added → first
# ping through the tunnel. Environment: BENCH_DIR (lab folder, default .tabula/bench-init-on-alloc).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-2}
dir=${BENCH_DIR:-$root/.tabula/bench-init-on-alloc}
base="console=ttyS0,115200 panic=-1 quiet init_on_free=1"
[ "$(id -u)" = 0 ] || { echo "needs root (the lab: namespace, taps, QEMU)"; exit 2; }
tabula="$root/tabula"
"$tabula" --help >/dev/null
results=$(mktemp)
trap '"$tabula" lab down --dir "$dir" >/dev/null 2>&1 || true; rm -f "$results"' EXIT

for round in $(seq 1 "$rounds"); do
  for variant in off on; do
    cmdline="$base init_on_alloc=$([ $variant = on ] && echo 1 || echo 0)"
    echo "== round $round, init_on_alloc $variant: $cmdline" >&2
    out=$("$tabula" lab up --relays 1 --json --dir "$dir" --relay-cmdline "$cmdline" 2>"$dir.log") || { echo "lab up failed, see $dir.log" >&2; exit 1; }
    echo "$out" | jq -r --arg v "$variant" --arg r "$round" \
      '.relays[0] as $x | [$r, $v, ($x.timeline.enrolled_at - $x.timeline.kexec_at), $x.timeline.deploy, $x.timeline.first_handshake, $x.handshake, $x.ping] | @tsv' >> "$results"
    "$tabula" lab down --dir "$dir" >/dev/null
  done
done

printf '%-6s %-14s %10s %10s %10s %10s %s\n' round init_on_alloc boot_s serve_s boot+serve first_s ok
awk -F'\t' '{ printf "%-6s %-14s %10.1f %10.1f %10.1f %10.1f %s\n", $1, $2, $3, $4, $3 + $4, $5, ($6 == "true" && $7 == "true") ? "yes" : "NO" }' "$results"
awk -F'\t' '{ s[$2] += $3 + $4; n[$2]++ } END { for (v in s) printf "mean boot+serve init_on_alloc=%s: %.1f s (%d runs)\n", v, s[v] / n[v], n[v] }' "$results"
