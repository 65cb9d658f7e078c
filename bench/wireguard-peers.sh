#!/usr/bin/env bash
# Applies full peer sets (replace_peers) of 10k, 65,536, 100k and 1M peers through Tabula's UAPI client to Debian's
# wireguard-go in a fresh network namespace, and reports wall time and peak RSS of our process and of the daemon.
# Side by side: the same 65,536-peer set through `wg setconf` (wireguard-tools, same socket), and the same sets into
# a minimal sink daemon (bench program, separate process) to isolate the client's own cost, and the kernel path's
# message encoding alone (no kernel WireGuard on this machine kind: CONFIG_WIREGUARD is unset).
#
# wireguard-go caps a device at 2^16 = 65,536 peers (device/constants.go MaxPeers): the 100k and 1M runs end with
# the daemon's errno=-22 after 65,536 peers, which our client reports as WireGuardDeviceException EINVAL.
#
# Needs root, ip, wireguard-go, wg (scripts/setup). Usage: bench/wireguard-peers.sh [REPS]   (default 1 run each)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-1}
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
for tool in ip wireguard-go wg; do command -v $tool >/dev/null || { echo "missing $tool: run scripts/setup" >&2; exit 2; }; done

dotnet build bench/Tabula.WireGuard.Bench -c Release --nologo -v quiet >&2
bench=bench/Tabula.WireGuard.Bench/bin/Release/net10.0/Tabula.WireGuard.Bench
ns=tbwg-bench-$$
name=twbench$$
name=${name:0:15}
work=$(mktemp -d)
daemon=
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  [ -n "${sink:-}" ] && kill "$sink" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -f "/var/run/wireguard/$name.sock"
  rm -rf "$work"
}
trap cleanup EXIT
umask 077
ip netns add "$ns"

start_daemon() {
  [ -n "$daemon" ] && { kill "$daemon"; wait "$daemon" 2>/dev/null || true; }
  rm -f "/var/run/wireguard/$name.sock"
  ip netns exec "$ns" env LOG_LEVEL=error WG_PROCESS_FOREGROUND=1 wireguard-go -f "$name" >/dev/null 2>&1 &
  daemon=$!
  for _ in $(seq 200); do [ -S "/var/run/wireguard/$name.sock" ] && break; sleep 0.05; done
  wg genkey > "$work/key"
  ip netns exec "$ns" wg set "$name" private-key "$work/key" listen-port 51820
}
daemon_hwm() { awk '/VmHWM/ {print $2}' "/proc/$daemon/status"; }

echo "# $(date -u +%FT%TZ) $(nproc) CPU, $(uname -r), $(dotnet --version), wireguard-go $(dpkg-query -W -f='${Version}' wireguard-go), wireguard-tools $(dpkg-query -W -f='${Version}' wireguard-tools)"
echo "# columns: what, then the bench program's line (seconds = connect to errno reply; peak_rss_kib = our VmHWM), then daemon_peak_rss_kib"
for n in 10000 65536 100000 1000000; do
  for r in $(seq "$reps"); do
    start_daemon
    line=$($bench apply --interface "$name" --peers "$n" || true)
    echo "uapi->wireguard-go $line daemon_peak_rss_kib=$(daemon_hwm)"
  done
done

# Same 65,536 peers through wg setconf (reads a config file, speaks UAPI to the same daemon).
$bench write-conf --peers 65536 --private-key "$(cat "$work/key")" > "$work/peers.conf"
for r in $(seq "$reps"); do
  start_daemon
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/wg.rss" ip netns exec "$ns" wg setconf "$name" "$work/peers.conf"
  end=$(date +%s.%N)
  echo "wg-setconf->wireguard-go peers=65536 seconds=$(echo "$end - $start" | bc) peak_rss_kib=$(cat "$work/wg.rss") daemon_peak_rss_kib=$(daemon_hwm)"
done

# Read-back of the full device through our client.
line=$($bench get --interface "$name")
echo "uapi<-wireguard-go $line"
start=$(date +%s.%N); ip netns exec "$ns" wg show "$name" dump | wc -l > /dev/null; end=$(date +%s.%N)
echo "wg-show-dump<-wireguard-go peers=65536 seconds=$(echo "$end - $start" | bc)"

# The client alone: a sink daemon that parses lines and answers errno=0.
mkdir -p "$work/sock"
$bench sink --interface sink0 --socket-dir "$work/sock" 2>/dev/null &
sink=$!
for _ in $(seq 200); do [ -S "$work/sock/sink0.sock" ] && break; sleep 0.05; done
for n in 100000 1000000; do
  for r in $(seq "$reps"); do
    echo "uapi->sink $($bench apply --interface sink0 --socket-dir "$work/sock" --peers "$n")"
  done
done
for n in 100000 1000000; do
  echo "netlink-encode-only $($bench encode-kernel --peers "$n")"
done

# Kernel path inside a QEMU guest (software emulation: these times measure TCG as much as the kernel; they are there
# to show the netlink path works at scale and how it batches). Slow: opt in with WITH_GUEST=1.
if [ "${WITH_GUEST:-}" = 1 ]; then
  for n in 10000 100000; do
    echo "netlink->kernel(qemu-tcg) $(GUEST_TIMEOUT=3000 tests/Tabula.WireGuard.Tests/Guest/kernel-guest.sh --memory 4096 kernel-apply --peers "$n" | grep -a 'mode=kernel-apply' | tr -d '\r')"
  done
fi
