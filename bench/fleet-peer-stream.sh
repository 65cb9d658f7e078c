#!/usr/bin/env bash
# Peer stream benchmark: DEVICES customer keys (default 1M), RELAYS simulated relays (default 1000) on HTTP/2
# over loopback, ADDS sequential device additions (default 200).
# Reports: full snapshot time to a fresh relay, p50/p90/p99 from device-add request to "all relays applied",
# controller RSS (the controller is `tabula fleet serve`, a separate process).
# Usage: bench/fleet-peer-stream.sh [--devices N] [--relays N] [--adds N]
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build bench/Tabula.Fleet.Bench/Tabula.Fleet.Bench.csproj -c Release --nologo -v quiet >&2
exec dotnet bench/Tabula.Fleet.Bench/bin/Release/net10.0/Tabula.Fleet.Bench.dll "$@"
