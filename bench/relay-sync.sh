#!/usr/bin/env bash
# The relay agent's peer sync at scale: the real controller (`tabula fleet serve`, HTTPS, SQLite seeded with N
# devices) streams a full snapshot; the agent's PeerSync (src/Tabula.Relay, the code tabula-relay runs) applies it
# through the UAPI path to Debian's wireguard-go in a fresh network namespace, then to a sink daemon that only parses
# and acknowledges (the agent's own cost). Prints time to the snapshot applied and the agent's peak RSS.
#
# wireguard-go caps a device at 2^16 = 65,536 peers (device/constants.go MaxPeers): at 100k and 1M the daemon answers
# EINVAL after 65,536 peers and the agent reports it and resubscribes; the line shows that reason.
# Kernel WireGuard (netlink) at scale is measured inside QEMU by bench/wireguard-peers.sh WITH_GUEST=1.
#
# Needs root, ip, wireguard-go (scripts/setup). Usage: bench/relay-sync.sh [N…]   (default 10000 65536 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
for tool in ip wireguard-go; do command -v $tool >/dev/null || { echo "missing $tool: run scripts/setup" >&2; exit 2; }; done
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(10000 65536 100000 1000000)

dotnet build bench/Tabula.Relay.Bench -c Release --nologo -v quiet >&2
dotnet build bench/Tabula.WireGuard.Bench -c Release --nologo -v quiet >&2
bench=bench/Tabula.Relay.Bench/bin/Release/net10.0/Tabula.Relay.Bench
wgbench=bench/Tabula.WireGuard.Bench/bin/Release/net10.0/Tabula.WireGuard.Bench
ns=tbrelay-bench-$$
name=trbench$$
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
ip netns add "$ns"

echo "# $(date -u +%FT%TZ) $(nproc) CPU, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r), dotnet $(dotnet --version), wireguard-go $(dpkg-query -W -f='${Version}' wireguard-go)"
for n in "${sizes[@]}"; do
  [ -n "$daemon" ] && { kill "$daemon"; wait "$daemon" 2>/dev/null || true; }
  rm -f "/var/run/wireguard/$name.sock"
  ip netns exec "$ns" env LOG_LEVEL=error WG_PROCESS_FOREGROUND=1 wireguard-go -f "$name" >/dev/null 2>&1 &
  daemon=$!
  for _ in $(seq 200); do [ -S "/var/run/wireguard/$name.sock" ] && break; sleep 0.05; done
  line=$($bench --devices "$n" --interface "$name")
  echo "agent->wireguard-go $line daemon_peak_rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")"
done

mkdir -p "$work/sock"
$wgbench sink --interface sink0 --socket-dir "$work/sock" 2>/dev/null &
sink=$!
for _ in $(seq 200); do [ -S "$work/sock/sink0.sock" ] && break; sleep 0.05; done
for n in "${sizes[@]}"; do
  [ "$n" -ge 100000 ] || continue
  echo "agent->sink $($bench --devices "$n" --interface sink0 --socket-dir "$work/sock")"
done
