#!/bin/sh
# debian-root.sh prints the directory of a debootstrap'ed Debian (bookworm,
# minbase) root for the package oracle tests (dpkg-query, dpkg --verify):
# the tar scripts/bench-debian.sh caches, extracted once next to it. It needs
# root, debootstrap and a Debian mirror the first time only.
set -eu
sh "$(dirname "$0")/bench-debian.sh"
tar="${HOME:-/root}/.cache/ctrforensics/debian-bookworm-minbase.tar"
dir="${tar%.tar}.d"
if [ ! -f "$dir/.complete" ]; then
	rm -rf "$dir" "$dir.tmp"
	mkdir -p "$dir.tmp"
	tar --numeric-owner --xattrs -C "$dir.tmp" -xf "$tar"
	touch "$dir.tmp/.complete"
	mv "$dir.tmp" "$dir"
fi
echo "$dir"
