#!/usr/bin/env bash
# Side-by-side download benchmark: 50 parallel HTTPS downloads of one 30 MB OS package archive, from the Tabula
# provisioning server (`tabula provisioning serve`) and from nginx (Debian package) serving the same file from a
# `tabula provisioning export` tree with the same certificate. Prints both throughputs and the ratio (goal >= 0.9).
#
# Usage: bench/provisioning-vs-nginx.sh [parallel=50] [size_mb=30] [rounds=3]
# Needs: nginx (nginx-light is enough), curl, iproute2 (ss) (scripts/apt-packages does not install nginx: the benchmark is not a test).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
parallel=${1:-50}
size_mb=${2:-30}
rounds=${3:-3}
command -v nginx >/dev/null || { echo "bench: nginx is needed (apt-get install nginx-light)" >&2; exit 2; }
work=$(mktemp -d /tmp/tabula-bench.XXXXXX)
chmod 755 "$work"   # nginx workers (www-data) read the mirror tree
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
tabula() { "$repo/tabula" "$@"; }

echo "bench: preparing a signed ${size_mb} MB package in $work" >&2
tabula keygen root --out root >/dev/null
tabula keygen leaf --root-key root.key --root-cert root.pem --out signer1 >/dev/null
tabula keygen leaf --root-key root.key --root-cert root.pem --out signer2 >/dev/null
head -c "$((size_mb * 1024 * 1024))" /dev/urandom > vmlinuz   # incompressible: the zip is as large
echo initramfs > initramfs.cpio
tabula ospkg create --kernel vmlinuz --initramfs initramfs.cpio --out os >/dev/null
tabula ospkg sign --key signer1.key --cert signer1.pem os.json >/dev/null
tabula ospkg sign --key signer2.key --cert signer2.pem os.json >/dev/null
mkdir trust && cp root.pem trust/ospkg_signing_root.pem
echo '{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network"}' > trust/trust_policy.json
tabula provisioning tls init --out tls >/dev/null
token=$(tabula provisioning token create --store store --name bench 2>/dev/null)

free_port() { local p; while :; do p=$(shuf -i 20000-60000 -n 1); ss -ltn | grep -q ":$p " || { echo "$p"; return; }; done; }
ours_port=$(free_port)
nginx_port=$(free_port)
cat > prov.json <<JSON
{ "Listen": "https://127.0.0.1:$ours_port", "StoreDirectory": "store", "TrustPolicyDirectory": "trust",
  "Tls": { "CertificatePath": "tls/server.pem", "KeyPath": "tls/server.key" },
  "Limits": { "MachineRequestsPerSecond": 100000 } }
JSON
# The server runs as deployed: ./tabula execs the NativeAOT build (same PID), or with TABULA_JIT=1 the JIT build.
# BENCH_ENV adds environment variables to the server only (e.g. BENCH_ENV="DOTNET_TieredPGO=0").
env ${BENCH_ENV:-} "$repo/tabula" provisioning serve --config prov.json > serve.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s --cacert tls/ca.pem "https://localhost:$ours_port/healthz" >/dev/null && break; sleep 0.1; done
TABULA_TOKEN=$token tabula publish os.json os.zip --server "https://localhost:$ours_port" --channel stable --ca tls/ca.pem >/dev/null
tabula provisioning export mirror --store store >/dev/null
hex=$(sha256sum os.zip | cut -d' ' -f1)
path="/ospkg/$hex.zip"

mkdir -p nginx/logs nginx/tmp
cat > nginx/nginx.conf <<CONF
worker_processes auto;
error_log $work/nginx/logs/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 30;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp; fastcgi_temp_path $work/nginx/tmp;
  uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  types { application/zip zip; application/json json; }
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $work/tls/server.pem;
    ssl_certificate_key $work/tls/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $work/mirror;
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' &
pids+=($!)
ours_pid=${pids[0]}
nginx_pid=${pids[1]}
for _ in $(seq 100); do curl -s --cacert tls/ca.pem -o /dev/null "https://localhost:$nginx_port$path" && break; sleep 0.1; done

# Both serve the same bytes.
for port in "$ours_port" "$nginx_port"; do
  got=$(curl -s --cacert tls/ca.pem "https://localhost:$port$path" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$hex" ] || { echo "bench: server on port $port served other bytes" >&2; exit 1; }
done

# Like for like: print what each server negotiated with curl (protocol and cipher suite).
for port in "$ours_port" "$nginx_port"; do
  printf 'bench: port %s: %s\n' "$port" "$(curl -sv --http1.1 --cacert tls/ca.pem -o /dev/null "https://localhost:$port/healthz" 2>&1 \
    | sed -n 's/.*SSL connection using //p')" >&2
done

# CPU seconds (user + system) used so far by a process and its children (nginx workers), from /proc.
cpu_seconds() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# One round: $parallel curl processes at once, HTTP/1.1 over TLS, bodies discarded; prints wall seconds and the
# server's CPU seconds. Wall time depends on whatever else the machine runs; server CPU per byte much less so.
round() {
  local port=$1 pid=$2 start end cpu0 cpu1
  cpu0=$(cpu_seconds "$pid")
  start=$(date +%s.%N)
  seq "$parallel" | xargs -P "$parallel" -I{} curl -s --http1.1 --cacert tls/ca.pem -o /dev/null --fail "https://localhost:$port$path"
  end=$(date +%s.%N)
  cpu1=$(cpu_seconds "$pid")
  awk -v a="$start" -v b="$end" -v c0="$cpu0" -v c1="$cpu1" 'BEGIN { printf "%.3f %.2f\n", b - a, c1 - c0 }'
}
bytes=$(stat -c %s os.zip)
best_ours=999999; best_nginx=999999; cpu_ours=0; cpu_nginx=0
for r in $(seq "$rounds"); do
  read -r t_ours c_ours < <(round "$ours_port" "$ours_pid")
  read -r t_nginx c_nginx < <(round "$nginx_port" "$nginx_pid")
  printf 'round %d: tabula %.2fs (server CPU %.2fs)  nginx %.2fs (server CPU %.2fs)\n' "$r" "$t_ours" "$c_ours" "$t_nginx" "$c_nginx" >&2
  cpu_ours=$(awk -v a="$cpu_ours" -v b="$c_ours" 'BEGIN { print a + b }')
  cpu_nginx=$(awk -v a="$cpu_nginx" -v b="$c_nginx" 'BEGIN { print a + b }')
  best_ours=$(awk -v a="$t_ours" -v b="$best_ours" 'BEGIN { print (a < b) ? a : b }')
  best_nginx=$(awk -v a="$t_nginx" -v b="$best_nginx" 'BEGIN { print (a < b) ? a : b }')
done
mb_ours=$(awk -v n="$parallel" -v b="$bytes" -v t="$best_ours" 'BEGIN { print n * b / t / 1e6 }')
mb_nginx=$(awk -v n="$parallel" -v b="$bytes" -v t="$best_nginx" 'BEGIN { print n * b / t / 1e6 }')
printf 'archive: %d bytes, %d parallel downloads over TLS (HTTP/1.1), best of %d rounds; tabula build: %s\n' \
  "$bytes" "$parallel" "$rounds" "$(if [ -n "${TABULA_JIT:-}" ]; then echo JIT; else echo NativeAOT; fi)"
printf 'tabula provisioning: %8.1f MB/s (%.2fs)\n' "$mb_ours" "$best_ours"
printf 'nginx %s:       %8.1f MB/s (%.2fs)\n' "$(nginx -v 2>&1 | sed 's|.*/||')" "$mb_nginx" "$best_nginx"
printf 'server CPU per GB:   tabula %.2fs, nginx %.2fs (CPU efficiency ratio nginx/tabula %.2f)\n' \
  "$(awk -v c="$cpu_ours" -v n="$parallel" -v b="$bytes" -v r="$rounds" 'BEGIN { print c / (n * b * r / 1e9) }')" \
  "$(awk -v c="$cpu_nginx" -v n="$parallel" -v b="$bytes" -v r="$rounds" 'BEGIN { print c / (n * b * r / 1e9) }')" \
  "$(awk -v a="$cpu_nginx" -v b="$cpu_ours" 'BEGIN { print a / b }')"
printf 'load average at the end: %s (other work on the machine skews wall times)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'ratio tabula/nginx:  %8.2f (goal >= 0.90)\n' "$(awk -v a="$mb_ours" -v b="$mb_nginx" 'BEGIN { print a / b }')"
