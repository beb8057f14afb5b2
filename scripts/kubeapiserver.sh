#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy, once, into a cache
# outside the checkout, and prints the directory holding both binaries. The
# k8s integration test (integration/k8s_apiserver_test.go) starts them on
# loopback; none of it enters the product's go.mod.
#
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/apiserver,
# ...) at v0.0.0 and replaces them by directories of its own tree, which a
# module zip does not carry and the proxy does not serve. So the build runs in
# a scratch module that requires k8s.io/kubernetes and replaces each staging
# module by its published v0.X.Y release (the same source, tagged per
# release). etcd is built from go.etcd.io/etcd/server/v3's etcdmain at the
# version kubernetes pins, through a two-line main package in the same module.
set -euo pipefail

version=${KUBE_VERSION:-v1.37.2}
go=${GO:-go}
cache=${CTRFORENSICS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ctrforensics}
out="$cache/kube-apiserver-$version-$($go env GOOS)-$($go env GOARCH)"

if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then
  echo "$out"
  exit 0
fi

dir=$($go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "kubeapiserver: could not download k8s.io/kubernetes@$version" >&2; exit 2; }
staging=${version/#v1./v0.}
echo "kubeapiserver: building kube-apiserver $version and etcd into $out (once; cached)" >&2
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/kube-apiserver.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mod="$tmp/mod"
mkdir -p "$mod/etcd"
{
  echo "module ctrforensics.invalid/kubebuild"
  echo
  sed -n 's/^go \(.*\)$/go \1/p' "$dir/go.mod"
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo "replace ("
  # Every "k8s.io/X => ./staging/src/k8s.io/X" of kubernetes' go.mod becomes
  # "k8s.io/X => k8s.io/X v0.Y.Z".
  sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*$#\t\1 => \1 '"$staging"'#p' "$dir/go.mod"
  echo ")"
} >"$mod/go.mod"
cat >"$mod/tools.go" <<'EOF'
//go:build tools

package kubebuild

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
EOF
cat >"$mod/etcd/main.go" <<'EOF'
// Command etcd is etcd's server, as go.etcd.io/etcd/server/v3/etcdmain runs it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version"
ldflags="$ldflags -X k8s.io/component-base/version.gitMajor=$(echo "$version" | cut -d. -f1 | tr -d v)"
ldflags="$ldflags -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)"
ldflags="$ldflags -X k8s.io/component-base/version.gitTreeState=clean"
start=$(date +%s)
(cd "$mod" && GOFLAGS=-mod=mod CGO_ENABLED=0 $go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver ./etcd)
echo "kubeapiserver: built in $(($(date +%s) - start)) s (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
rm -rf "$mod"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
