#!/usr/bin/env bash
# Builds containerd 2.x (containerd, ctr, containerd-shim-runc-v2) from the Go
# module proxy, once, into a cache outside the checkout, and prints the path of
# the containerd binary. Debian ships only containerd 1.6; the integration suite
# runs against both (make test). `go install` refuses this module (it has
# replace directives), so it is downloaded and built inside the module cache.
set -euo pipefail

version=${CONTAINERD2_VERSION:-v2.4.2}
go=${GO:-go}
cache=${CTRFORENSICS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ctrforensics}
out="$cache/containerd-$version-$($go env GOOS)-$($go env GOARCH)"

if [ -x "$out/containerd" ] && [ -x "$out/containerd-shim-runc-v2" ] && [ -x "$out/ctr" ] &&
  "$out/containerd" --version 2>/dev/null | grep -q " $version "; then
  echo "$out/containerd"
  exit 0
fi

dir=$($go mod download -json "github.com/containerd/containerd/v2@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "containerd2: could not download github.com/containerd/containerd/v2@$version" >&2; exit 2; }
echo "containerd2: building containerd $version into $out (once; cached)" >&2
tmp=$(mktemp -d "$cache.build.XXXXXX" 2>/dev/null || { mkdir -p "$cache" && mktemp -d "$cache.build.XXXXXX"; })
trap 'rm -rf "$tmp"' EXIT
ldflags="-X github.com/containerd/containerd/v2/version.Version=$version"
(cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 $go build -trimpath -tags no_btrfs -ldflags "$ldflags" -o "$tmp/" \
  ./cmd/containerd ./cmd/ctr ./cmd/containerd-shim-runc-v2)
mkdir -p "$(dirname "$out")"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out/containerd"
