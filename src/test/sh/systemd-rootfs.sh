#!/bin/sh
# Builds (once) a minimal Debian bookworm rootfs that boots systemd, for SystemdIT.
# Cached outside the repository, keyed by a hash of the package list, so reruns skip it.
# Prints the rootfs path on stdout.
set -eu
PACKAGES="systemd,systemd-sysv,dbus,openjdk-17-jre-headless,adduser,procps,iproute2"
SUITE=bookworm
MIRROR=${BATON_IT_MIRROR:-http://deb.debian.org/debian}
CACHE=${BATON_IT_CACHE:-/var/cache/baton-it}
key=$(printf '%s %s %s' "$SUITE" "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-16)
root="$CACHE/rootfs-$key"
if [ -f "$root/.baton-it-complete" ]; then
  echo "$root"
  exit 0
fi
mkdir -p "$CACHE"
rm -rf "$root.tmp"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root.tmp" "$MIRROR" >&2
# A container needs no getty on the console and no network setup of its own.
rm -f "$root.tmp/etc/systemd/system/getty.target.wants/"* 2>/dev/null || true
echo baton-it > "$root.tmp/etc/hostname"
apt_clean() { chroot "$root.tmp" apt-get clean >&2 || true; }
apt_clean
touch "$root.tmp/.baton-it-complete"
rm -rf "$root"
mv "$root.tmp" "$root"
echo "$root"
