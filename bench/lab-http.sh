#!/usr/bin/env bash
# Benchmark (not a test): HTTP throughput through a relay against the same download without it, in the lab (issue 15).
# One `tabula lab up --relays 1 --json`, then from the lab's customer namespace, alternating: GET /bytes/N from the
# echo host directly (the customer's own route on the lab internet) and through the relay (curl bound to the
# customer's WireGuard interface: encrypt, the relay guest decrypts, forwards, NATs to its public address and back).
# The relay is a TCG guest, so absolute figures measure the emulator; read the ratio, per round, side by side.
#
#   flock /work/qemu.lock bench/lab-http.sh [ROUNDS] [BYTES]     (root; default 3 rounds of 20 000 000 bytes)
#
# Environment: BENCH_DIR (lab folder, default .tabula/bench-lab-http), KEEP_LAB=1 to leave the lab up.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
bytes=${2:-20000000}
dir=${BENCH_DIR:-$root/.tabula/bench-lab-http}
[ "$(id -u)" = 0 ] || { echo "needs root (the lab: namespace, taps, QEMU)" >&2; exit 2; }
for tool in jq curl; do command -v $tool >/dev/null || { echo "missing $tool" >&2; exit 2; }; done
[ "$bytes" -ge 1 ] && [ "$bytes" -le 100000000 ] || { echo "BYTES must be 1..100000000 (the echo host's limit)" >&2; exit 2; }
tabula="$root/tabula"
"$tabula" --help >/dev/null
mkdir -p "$(dirname "$dir")"
[ "${KEEP_LAB:-}" = 1 ] || trap '"$tabula" lab down --dir "$dir" >/dev/null 2>&1 || true' EXIT
echo "# $(date -u +%FT%TZ) $(nproc) CPU, load $(cut -d' ' -f1-3 /proc/loadavg), host $(uname -r)" >&2

out=$("$tabula" lab up --relays 1 --json --dir "$dir" 2>"$dir.log") || { echo "lab up failed, see $dir.log" >&2; exit 1; }
ns=$(jq -r .client_namespace <<<"$out")
iface=$(jq -r '.relays[0].wireguard_interface' <<<"$out")
egress=$(jq -r '.relays[0].egress_ipv4 // empty' <<<"$out")
public=$(jq -r '.relays[0].public_ipv4' <<<"$out")
[ "$egress" = "$public" ] || { echo "the relay does not NAT to its public address (egress_ipv4='$egress', public $public): nothing to measure" >&2; exit 1; }
url="http://$(jq -r .internet.echo.ipv4 <<<"$out"):$(jq -r .internet.echo.http_port <<<"$out")/bytes/$bytes"

# One download; prints MB/s, or fails the run when the body is short (a lost byte would flatter the figure).
fetch() {
  local got
  got=$(ip netns exec "$ns" curl -sS -o /dev/null --max-time 600 -w '%{size_download} %{speed_download}' "$@" "$url")
  [ "${got%% *}" = "$bytes" ] || { echo "short download: ${got%% *} of $bytes bytes ($*)" >&2; exit 1; }
  awk '{ printf "%.2f", $2 / 1e6 }' <<<"$got"
}

printf '%-6s %12s %14s %7s\n' round direct_MB/s via_relay_MB/s ratio
for round in $(seq 1 "$rounds"); do
  direct=$(fetch)
  relay=$(fetch --interface "$iface")
  printf '%-6s %12s %14s %7.3f\n' "$round" "$direct" "$relay" "$(awk -v a="$relay" -v b="$direct" 'BEGIN { print a / b }')"
done
