#!/usr/bin/env bash
# Rate limiter cost: customer API throughput (GET /app/v1/devices with an account number) of two `tabula fleet serve`
# processes side by side, one with `--rate-limits off`, one with the limiter on (every budget x SCALE, so it does all its
# work and refuses nothing), in alternating rounds from WORKERS clients on their own loopback addresses. Prints requests/s
# per round, the medians and the ratio on/off (docs/security.md).
# The servers run as deployed: ./tabula execs the NativeAOT build (TABULA_JIT=1: the JIT build).
# Usage: bench/fleet-rate-limits.sh [--accounts N] [--workers N] [--seconds S] [--rounds N] [--warmup S] [--scale N]
set -euo pipefail
cd "$(dirname "$0")/.."
./tabula --help >/dev/null   # publishes the NativeAOT build first if the sources changed
dotnet build bench/Tabula.Fleet.RateBench/Tabula.Fleet.RateBench.csproj -c Release --nologo -v quiet >&2
exec dotnet bench/Tabula.Fleet.RateBench/bin/Release/net10.0/Tabula.Fleet.RateBench.dll --tabula "$PWD/tabula" "$@"
