#!/usr/bin/env bash
# Benchmark (not a test): the same signed OS package booted directly (QEMU -kernel/-initrd) and through stboot
# (tabula-boot as /init: network, HTTPS fetch from `tabula provisioning serve`, verify, kexec), several runs each,
# QEMU under TCG on a tap in a private namespace. Prints each run, the medians, the ratio and stboot's stage timeline.
# Upstream Go stboot on this setup: 14.4 s vs 4.3 s direct (3.3x); the goal is <= 2.9x. A third column boots stboot
# with --kexec=file (kexec_file_load, as before stboot had its own kexec_load layout) for comparison in the same run.
#
#   sudo bench/stboot-vs-direct.sh [runs]     (default 5 runs per way)
#
# Time is measured from QEMU's start to the OS's marker line on the serial console ("TABULA-MARKER"), which its
# /init prints first thing; the direct boot's OS is the very same kernel, initramfs and command line.
# Environment: BENCH_DIR (work folder, default .tabula/bench-stboot), KERNEL_RELEASE (default: newest /boot/vmlinuz-*).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
dir=${BENCH_DIR:-$root/.tabula/bench-stboot}
release=${KERNEL_RELEASE:-$(ls /boot/vmlinuz-* | sort -V | tail -1 | sed 's#/boot/vmlinuz-##')}
kernel=/boot/vmlinuz-$release
ns=tabula-bench-$$
host=10.98.0.1 guest=10.98.0.2
[ "$(id -u)" = 0 ] || { echo "needs root (namespace, tap)"; exit 2; }

tabula="$root/tabula"
"$tabula" --help >/dev/null
boot=$root/out/boot/tabula-boot
if [ ! -x "$boot" ] || [ -n "$(find "$root/src" -newer "$boot" -name '*.cs' -not -path '*/obj/*' -print -quit)" ]; then
  echo "== publishing tabula-boot (static NativeAOT)"
  dotnet publish "$root/src/Tabula.Boot" -c Release -r linux-x64 -o "$root/out/boot" --nologo -v quiet >/dev/null
fi

server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT

rm -rf "$dir" && mkdir -p "$dir/keys" "$dir/os/dev" "$dir/trust" && cd "$dir"
echo "== OS package: $kernel + an initramfs whose /init is tabula-boot in marker mode"
cp "$boot" os/init
mknod -m 600 os/dev/console c 5 1; mknod -m 666 os/dev/null c 1 3; mknod -m 666 os/dev/urandom c 1 9; mknod -m 666 os/dev/random c 1 8
mkdir -p os/proc os/sys os/run
(cd os && find . | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible | gzip -9n > ../os-initramfs.cpio.gz)
cmdline="console=ttyS0 panic=-1 quiet -- marker"
"$tabula" keygen root --out keys/root >/dev/null
for i in 1 2 3; do "$tabula" keygen leaf --root-key keys/root.key --root-cert keys/root.pem --out keys/signer$i >/dev/null; done
"$tabula" ospkg create --kernel "$kernel" --initramfs os-initramfs.cpio.gz --cmdline "$cmdline" --out os >/dev/null
"$tabula" ospkg sign --key keys/signer1.key --cert keys/signer1.pem os.json >/dev/null
"$tabula" ospkg sign --key keys/signer2.key --cert keys/signer2.pem os.json >/dev/null
ls -l os.zip

echo "== provisioning server on https://$host:8443 in namespace $ns"
ip netns add "$ns" && ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev tap0 mode tap && ip -n "$ns" addr add $host/24 dev tap0 && ip -n "$ns" link set tap0 up
cp keys/root.pem trust/ospkg_signing_root.pem
echo '{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network"}' > trust/trust_policy.json
"$tabula" provisioning tls init --out tls --host $host >/dev/null
token=$("$tabula" provisioning token create --store store --name bench | tail -1)
cat > prov.json <<JSON
{ "Listen": "https://$host:8443", "StoreDirectory": "store", "TrustPolicyDirectory": "trust",
  "Tls": { "CertificatePath": "tls/server.pem", "KeyPath": "tls/server.key" } }
JSON
ip netns exec "$ns" "$tabula" provisioning serve --config prov.json > server.log 2>&1 &
server_pid=$!
for _ in $(seq 100); do ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$host/8443" 2>/dev/null && break; sleep 0.1; done
TABULA_TOKEN=$token ip netns exec "$ns" "$tabula" publish os.json os.zip --server https://$host:8443 --channel stable --ca tls/ca.pem >/dev/null
cp tls/ca.pem trust/tls_roots.pem
cat > host.json <<JSON
{"network_mode": "static", "host_ip": "$guest/24", "gateway": "$host", "ospkg_pointer": "https://$host:8443/channels/stable.json"}
JSON
# The stboot image is stboot's own artifact: uncompressed (the kernel copies it instead of inflating it, 0.45 s less
# under TCG). The stboot kernel's command line is stboot's too: cryptomgr.notests skips the kernel's crypto self-tests
# (0.55 s under TCG); package verification is stboot's own (OpenSSL), not the kernel's. The OS's command line is the
# signed one, in both boots.
"$tabula" image stboot --trust-policy trust --host-config host.json --kernel-release "$release" \
  --modules virtio_net,virtio_pci --init "$boot" --compression none --out stboot.cpio
stboot_append="console=ttyS0 panic=-1 quiet cryptomgr.notests"

# boot NAME INITRD APPEND [net]: prints seconds from QEMU start to the marker line; keeps the console in NAME.log
boot_once() {
  local name=$1 initrd=$2 append=$3 net=${4:-}
  local args=(-accel tcg -cpu max -m 1024 -nographic -no-reboot -nodefaults -serial stdio -monitor none
              -kernel "$kernel" -initrd "$initrd" -append "$append")
  if [ -n "$net" ]; then args+=(-netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=52:54:00:7a:b0:01)
  else args+=(-nic none); fi
  local start; start=$(date +%s.%N)
  ip netns exec "$ns" timeout 300 qemu-system-x86_64 "${args[@]}" </dev/null 2>&1 |
    while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done > "$name.log"
  local at; at=$(grep -a -m1 'TABULA-MARKER' "$name.log" | cut -d' ' -f1)
  [ -n "$at" ] || { echo "no marker in $dir/$name.log" >&2; tail -20 "$name.log" >&2; exit 1; }
  echo "$at - $start" | bc -l
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# stboot loads with kexec_load and its own trampoline by default (BIOS-booted x86-64); "--kexec=file" after the
# stboot kernel's "--" makes it use kexec_file_load (kernel and purgatory hash every segment), measured side by side.
direct=() stboot=() stbootfile=()
for i in $(seq "$runs"); do
  d=$(boot_once direct-$i os-initramfs.cpio.gz "$cmdline")
  s=$(boot_once stboot-$i stboot.cpio "$stboot_append" net)
  f=$(boot_once stbootfile-$i stboot.cpio "$stboot_append -- --kexec=file" net)
  direct+=("$d") stboot+=("$s") stbootfile+=("$f")
  printf 'run %d: direct %6.2f s   stboot %6.2f s   stboot --kexec=file %6.2f s\n' "$i" "$d" "$s" "$f"
done
md=$(printf '%s\n' "${direct[@]}" | median); ms=$(printf '%s\n' "${stboot[@]}" | median); mf=$(printf '%s\n' "${stbootfile[@]}" | median)
echo
echo "package: $(stat -c %s os.zip) bytes; stboot image: $(stat -c %s stboot.cpio) bytes (uncompressed); /init: $(stat -c %s "$boot") bytes"
printf 'median direct %.2f s, median through stboot %.2f s, ratio %.2fx (upstream stboot 3.3x, goal <= 2.9x)\n' "$md" "$ms" "$(echo "$ms / $md" | bc -l)"
printf 'stboot with --kexec=file (kexec_file_load + purgatory): median %.2f s, ratio %.2fx\n' "$mf" "$(echo "$mf / $md" | bc -l)"
echo "machine load: $(cat /proc/loadavg)"
echo "stage timeline (last stboot run; t= is ms since /init started, kernel uptime at /init in stage:mount):"
grep -a 'tabula-boot: stage:\|tabula-boot: timeline\|tabula-boot: kexec \|TABULA-MARKER' "stboot-$runs.log" | cut -d' ' -f2- | sed 's/^/  /'
