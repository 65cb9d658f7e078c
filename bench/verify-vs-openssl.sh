#!/usr/bin/env bash
# Benchmark (not a test): verifying a ~200 MB OS package with `tabula ospkg verify` against hashing the
# same zip with `openssl dgst -sha256` (SHA-NI: the practical limit) and `sha256sum`, whole processes,
# in the same run. Prints the medians and the ratios; the goal is tabula/openssl <= 1.25.
#
#   bench/verify-vs-openssl.sh [runs]        (default 15 runs per command, after 3 warm-ups)
#
# Environment: BENCH_DIR (work folder, default .tabula/bench), BENCH_MB (package size, default 200),
# TABULA_BIN (the executable to time; default: the NativeAOT build ./tabula runs, built if needed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-15}
dir=${BENCH_DIR:-$root/.tabula/bench}
mb=${BENCH_MB:-200}

"$root/tabula" --help >/dev/null   # builds/publishes the CLI if needed
case "$(uname -m)" in x86_64) rid=linux-x64 ;; aarch64) rid=linux-arm64 ;; *) rid=unknown ;; esac
bin=${TABULA_BIN:-$root/src/Tabula.Cli/bin/Release/aot/$rid/tabula}
[ -x "$bin" ] || bin=$root/src/Tabula.Cli/bin/Release/net10.0/tabula
jit=$root/src/Tabula.Cli/bin/Release/net10.0/tabula

rm -rf "$dir" && mkdir -p "$dir/keys"
cd "$dir"
echo "== making a ${mb} MB package (random kernel and initramfs: Deflate cannot shrink them)"
head -c $((mb / 2))M /dev/urandom > vmlinuz
head -c $((mb - mb / 2))M /dev/urandom > initramfs.cpio
"$bin" keygen root --out keys/root >/dev/null
for i in 1 2 3; do "$bin" keygen leaf --root-key keys/root.key --root-cert keys/root.pem --out keys/signer$i >/dev/null; done
"$bin" ospkg create --kernel vmlinuz --initramfs initramfs.cpio --out os >/dev/null
"$bin" ospkg sign --key keys/signer1.key --cert keys/signer1.pem os.json >/dev/null
"$bin" ospkg sign --key keys/signer3.key --cert keys/signer3.pem os.json >/dev/null
rm -f vmlinuz initramfs.cpio
"$bin" ospkg verify --descriptor os.json --roots keys/root.pem --threshold 2   # must say ACCEPTED (exit 0)
ls -l os.zip
cat os.zip >/dev/null   # page cache warm: every command reads from memory

verify="$bin ospkg verify --descriptor os.json --archive os.zip --roots keys/root.pem --threshold 2"
commands=("$verify" "openssl dgst -sha256 os.zip" "sha256sum os.zip")
names=("tabula" "openssl" "sha256sum")
if [ -x "$jit" ] && [ "$jit" != "$bin" ]; then
  commands+=("$jit ospkg verify --descriptor os.json --archive os.zip --roots keys/root.pem --threshold 2")
  names+=("tabula-jit")
fi

declare -A median
if command -v hyperfine >/dev/null; then
  echo "== hyperfine: $runs runs each, 3 warm-ups, no shell"
  hyperfine -N --warmup 3 --runs "$runs" --export-csv times.csv "${commands[@]}"
  # CSV: command,mean,stddev,median,user,system,min,max (seconds); rows in the order given.
  i=0
  while IFS=, read -r _ _ _ med _; do median[${names[$i]}]=$med; i=$((i + 1)); done < <(tail -n +2 times.csv)
else
  echo "== hyperfine not found: bash loop, $runs runs each after 3 warm-ups"
  for i in "${!commands[@]}"; do
    read -ra argv <<< "${commands[$i]}"
    for _ in 1 2 3; do "${argv[@]}" >/dev/null; done
    times=()
    for _ in $(seq "$runs"); do
      start=$(date +%s%N); "${argv[@]}" >/dev/null; end=$(date +%s%N)
      times+=($((end - start)))
    done
    median[${names[$i]}]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.6f", m / 1e9}')
  done
fi

echo
echo "== medians (whole processes, $(stat -c %s os.zip) bytes, $(nproc) cores)"
for n in "${names[@]}"; do awk -v n="$n" -v t="${median[$n]}" 'BEGIN { printf "  %-11s %8.1f ms\n", n, t * 1000 }'; done
awk -v t="${median[tabula]}" -v o="${median[openssl]}" -v s="${median[sha256sum]}" 'BEGIN {
  printf "  tabula/openssl   %.3f  (goal <= 1.25: %s)\n", t / o, (t / o <= 1.25 ? "met" : "NOT met")
  printf "  tabula/sha256sum %.3f\n", t / s }'
