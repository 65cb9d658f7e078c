#!/usr/bin/env bash
# Boots Debian's kernel (linux-image-amd64, which has WireGuard as a module) in QEMU with software emulation and runs
#   dotnet bench/Tabula.WireGuard.Bench/.../Tabula.WireGuard.Bench.dll ARGS...
# inside it, as root, against the real kernel module. The guest sees this host's root filesystem read-only over
# virtio-9p (so dotnet, wg, ip and the built bench program are all there) with fresh tmpfs on /tmp and /run.
# The initramfs is ours: Debian's static busybox (busybox-static), the virtio/9p modules and an /init script. Prints the guest console; the last lines are "GUEST-EXIT <code>".
# Needs: qemu-system-x86_64, linux-image-amd64, busybox-static, cpio; the bench program built.
#
# Usage: kernel-guest.sh [--memory MiB] ARGS...      e.g. kernel-guest.sh kernel-check
#        kernel-guest.sh --prepare DIR ARGS...          builds the guest in DIR (not under /tmp or /run, which the guest
#          covers with tmpfs) and boots nothing: prints kernel=, initrd= and append= lines for a launcher (KernelGuestTests
#          boots it with Tabula.Qemu: -machine q35, 2 CPUs, 2048 MiB, / shared read-only as "hostroot"). DIR is the caller's.
set -euo pipefail
memory=2048
prepare=
if [ "${1:-}" = "--memory" ]; then memory=$2; shift 2; fi
if [ "${1:-}" = "--prepare" ]; then prepare=$(readlink -f "$2"); shift 2; fi
case "$prepare" in /tmp|/tmp/*|/run|/run/*) echo "--prepare $prepare: the guest mounts tmpfs over /tmp and /run" >&2; exit 2;; esac
root=$(cd "$(dirname "$0")/../../.." && pwd)
# TABULA_WG_BENCH_DLL: the test passes the build of its own configuration (it builds the bench as a project reference).
dll=${TABULA_WG_BENCH_DLL:-"$root/bench/Tabula.WireGuard.Bench/bin/Release/net10.0/Tabula.WireGuard.Bench.dll"}
[ -f "$dll" ] || { echo "build the bench program first: dotnet build bench/Tabula.WireGuard.Bench -c Release" >&2; exit 2; }
release=$(ls /boot/vmlinuz-* 2>/dev/null | sed 's#/boot/vmlinuz-##' | sort | tail -1)
[ -n "$release" ] || { echo "no guest kernel: install linux-image-amd64" >&2; exit 2; }
modules=/lib/modules/$release
dotnet=$(readlink -f "$(command -v dotnet)")

# The guest mounts fresh tmpfs over /tmp and /run, which would hide a checkout (and its build) living there,
# as CI clones often do: give the guest a copy of the bench program under /var/tmp (or the caller's DIR) instead.
if [ -n "$prepare" ]; then
  mkdir -p "$prepare"; work=$prepare/build; guestbin=$prepare/bin; rm -rf "$work" "$guestbin"; mkdir -p "$work" "$guestbin"
else
  work=$(mktemp -d)
  guestbin=$(mktemp -d /var/tmp/tabula-wg-guest.XXXXXX)
  trap 'rm -rf "$work" "$guestbin"' EXIT
fi
cp -a "$(dirname "$dll")/." "$guestbin/"
chmod 755 "$guestbin"
dll="$guestbin/$(basename "$dll")"
mkdir -p "$work/tree/tabula" "$work/tree/bin" "$work/tree/dev" "$work/tree/proc" "$work/tree/sys"
busybox=/bin/busybox
# The guest has no libc of its own before it chroots into the host's tree: the busybox must be static.
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "no static busybox at $busybox: apt-get install busybox-static" >&2; exit 2
fi
cp "$busybox" "$work/tree/bin/busybox"
for applet in sh mount insmod mkdir chroot poweroff echo cat; do ln -s busybox "$work/tree/bin/$applet"; done

# Module closure for virtio-pci + 9p in dependency order, from modules.dep.
declare -A seen=()
order=()
visit() {
  local m=$1
  [ -n "${seen[$m]:-}" ] && return
  seen[$m]=1
  local deps
  deps=$(awk -v m="$m:" '$1 == m { $1 = ""; print }' "$modules/modules.dep")
  for d in $deps; do visit "$d"; done
  order+=("$m")
}
for m in kernel/drivers/virtio/virtio_pci.ko kernel/net/9p/9pnet_virtio.ko kernel/fs/9p/9p.ko; do visit "$m"; done
for m in "${order[@]}"; do
  cp "$modules/$m" "$work/tree/tabula/"
  echo "insmod /tabula/$(basename "$m")" >> "$work/tree/tabula/modules"
done

cat > "$work/tree/init" <<INIT
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
. /tabula/modules 2>&1
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /host || { echo "GUEST-EXIT 90"; poweroff -f; }
mount -t proc proc /host/proc; mount -t sysfs sys /host/sys; mount -t devtmpfs dev /host/dev
mount -t tmpfs tmp /host/tmp; mount -t tmpfs run /host/run; mkdir -p /host/run/netns
echo "GUEST-UP \$(uname -r)"
chroot /host /usr/bin/env PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/sh -c 'modprobe wireguard && modprobe veth && ip link set lo up && cd /tmp && HOME=/tmp DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_EnableDiagnostics=0 DOTNET_TieredPGO=0 "$dotnet" "$dll" $*'
echo "GUEST-EXIT \$?"
poweroff -f
INIT
chmod +x "$work/tree/init"
(cd "$work/tree" && find . -print0 | cpio --null -o -H newc --quiet) > "$work/extra.cpio"
mv "$work/extra.cpio" "$work/initrd"

# no_timer_check: under TCG on a loaded host the IO-APIC timer check can fail and panic the guest at boot.
append="console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check"
if [ -n "$prepare" ]; then
  mv "$work/initrd" "$prepare/initrd"; rm -rf "$work"
  printf 'kernel=%s\ninitrd=%s\nappend=%s\n' "/boot/vmlinuz-$release" "$prepare/initrd" "$append"
  exit 0
fi
timeout "${GUEST_TIMEOUT:-1500}" qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m "$memory" -smp 2 \
  -nographic -no-reboot -nodefaults -serial stdio \
  -kernel "/boot/vmlinuz-$release" -initrd "$work/initrd" \
  -append "$append" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
