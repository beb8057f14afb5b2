#!/usr/bin/env bash
# Installs the Debian packages ctrforensics's tests and demo run against, when
# missing: a real containerd and runc, a static busybox for test images, and
# the stock tools that check evidence bundles independently (sha256sum comes
# with coreutils; mactime with sleuthkit; skopeo reads the OCI image layout);
# libyara-dev for `make build-yara` and Debian's yara CLI its test compares with.
set -euo pipefail

need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
command -v ctr >/dev/null || need+=(containerd)
command -v mactime >/dev/null || need+=(sleuthkit)
command -v skopeo >/dev/null || need+=(skopeo)
command -v yara >/dev/null || need+=(yara)
# The static link of libmagic also needs the bzip2 and xz archives.
for p in libyara-dev libbz2-dev liblzma-dev zlib1g-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
command -v jq >/dev/null || need+=(jq)     # make demo turns harden's JSON into ctr's --mount flags
command -v tmux >/dev/null || need+=(tmux) # the browse TUI test drives it in a detached session
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || need+=(busybox-static)
command -v rpmbuild >/dev/null || need+=(rpm)             # the rpm database oracle of forensic/packages
command -v debootstrap >/dev/null || need+=(debootstrap)  # the Debian root of the dpkg oracle and benchmarks

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${need[*]}; run as root to install them" >&2
  exit 2
fi
echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
