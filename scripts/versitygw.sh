#!/usr/bin/env bash
# Builds versitygw (an S3-compatible gateway; its POSIX backend keeps buckets
# in a directory and supports object lock) from the Go module proxy, once,
# into a cache outside the checkout, and prints the path of the binary. The S3
# integration tests (integration/s3) start it on loopback; it stays out of the
# product's go.mod.
set -euo pipefail

version=${VERSITYGW_VERSION:-v1.8.0}
go=${GO:-go}
cache=${CTRFORENSICS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ctrforensics}
out="$cache/versitygw-$version-$($go env GOOS)-$($go env GOARCH)"

if [ -x "$out/versitygw" ]; then
  echo "$out/versitygw"
  exit 0
fi

dir=$($go mod download -json "github.com/versity/versitygw@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "versitygw: could not download github.com/versity/versitygw@$version" >&2; exit 2; }
echo "versitygw: building versitygw $version into $out (once; cached)" >&2
mkdir -p "$cache"
tmp=$(mktemp -d "$cache.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 $go build -trimpath -o "$tmp/" ./cmd/versitygw)
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out/versitygw"
