#!/bin/sh
# bench-debian.sh caches a debootstrap'ed Debian (bookworm, minbase) root as a
# tar for the imagespeed benchmark: ~/.cache/ctrforensics/debian-bookworm-minbase.tar.
# It needs root, debootstrap and a Debian mirror; it does nothing when the
# tar is there.
set -eu
out="${HOME:-/root}/.cache/ctrforensics/debian-bookworm-minbase.tar"
[ -s "$out" ] && exit 0
command -v debootstrap >/dev/null || { echo "bench-debian.sh: install debootstrap (apt-get install debootstrap)" >&2; exit 2; }
mkdir -p "$(dirname "$out")"
dir=$(mktemp -d /var/tmp/ctrforensics-debootstrap-XXXXXX)
trap 'rm -rf "$dir"' EXIT
debootstrap --variant=minbase bookworm "$dir" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >&2
tar --numeric-owner --xattrs -C "$dir" -cf "$out.tmp" .
mv "$out.tmp" "$out"
