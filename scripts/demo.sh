#!/usr/bin/env bash
# make demo: the two articles of the design brief, on a private containerd.
# Article 1: a PHP site is hacked (index.html defaced, shell.php dropped);
# ctrforensics shows what changed, without running anything in the container
# and without changing it, seals the evidence, keeps the hacked container as an
# image, audits how it was run, derives its read-only profile, and the site is
# restored read-only, where the attack fails. Article 2: a suspect image is
# examined without running it. `scripts/demo.sh clean` (make demo-clean)
# removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO=${CTRFORENSICS_DEMO_DIR:-/var/tmp/ctrforensics-demo}
SOCK=$DEMO/containerd.sock
NS=ctrforensics-demo
IMAGE=docker.io/ctrforensics/demo-web:1
# ctr and ctrforensics both read these, so the commands below stay short.
export CONTAINERD_ADDRESS=$SOCK CONTAINERD_NAMESPACE=$NS
export PATH=$PWD/bin:$PATH
CTR=(ctr)
CF=(ctrforensics)

if [ -t 1 ]; then bold=$'\e[1m' off=$'\e[0m'; else bold='' off=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
# run shows a command as one would type it, then runs it.
run() {
  local shown=() a
  for a in "$@"; do
    if [[ $a =~ ^[][A-Za-z0-9_./:=@%+,-]+$ ]]; then shown+=("$a"); else shown+=("'${a//\'/\'\\\'\'}'"); fi
  done
  printf '%s$ %s%s\n' "$bold" "${shown[*]}" "$off"
  "$@"
}

clean() {
  if [ -S "$SOCK" ]; then
    for c in web web-ro; do
      "${CTR[@]}" task kill -s SIGKILL $c >/dev/null 2>&1 || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        "${CTR[@]}" task delete $c >/dev/null 2>&1 && break
        "${CTR[@]}" task ls -q 2>/dev/null | grep -qx $c || break
        sleep 0.3
      done
      "${CTR[@]}" container delete $c >/dev/null 2>&1 || true
    done
    "${CTR[@]}" images rm docker.io/ctrforensics/suspect:1 localhost/evidence/web-hacked:IR-2026-042 "$IMAGE" >/dev/null 2>&1 || true
  fi
  if [ -f "$DEMO/containerd.pid" ]; then
    kill "$(cat "$DEMO/containerd.pid")" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$DEMO/containerd.pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $SOCK" 2>/dev/null || true
  # Unmount whatever is left below the demo directory, deepest first.
  if [ -d "$DEMO" ]; then
    awk -v d="$DEMO" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
      while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  fi
  rm -rf /run/ctrforensics/mounts/*.json.demo 2>/dev/null || true
  rm -rf "$DEMO"
}

if [ "${1:-}" = clean ]; then
  clean
  echo "demo removed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "make demo runs containerd and mounts overlayfs: run it as root" >&2
  exit 2
fi
clean
trap 'status=$?; clean; exit $status' EXIT
mkdir -p "$DEMO"

say "Start a private containerd (its own root, state and socket under $DEMO)"
echo "CONTAINERD_ADDRESS=$SOCK CONTAINERD_NAMESPACE=$NS"
cat > "$DEMO/config.toml" <<TOML
version = 2
root = "$DEMO/root"
state = "$DEMO/state"
temp = "$DEMO/tmp"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$DEMO/opt"
TOML
containerd --config "$DEMO/config.toml" >"$DEMO/containerd.log" 2>&1 &
echo $! >"$DEMO/containerd.pid"
for _ in $(seq 100); do "${CTR[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
"${CTR[@]}" version >/dev/null || { tail -20 "$DEMO/containerd.log"; exit 1; }
echo "containerd $(containerd --version | awk '{print $3}') listening on $SOCK"

say "Import the demo web image and run it"
go run ./tools/demoimage >"$DEMO/web.tar"
run "${CTR[@]}" images import "$DEMO/web.tar"
# The workload, like the article's apache, keeps a lock under /var/lock/app and
# a pid file under /run/app (a tmpfs) before it serves.
WORKLOAD='mkdir -p /var/lock/app /run/app && touch /var/lock/app/httpd.lock && echo $$ > /run/app/httpd.pid && exec httpd -f -p 8080 -h /var/www/html'
run "${CTR[@]}" run -d "$IMAGE" web sh -c "$WORKLOAD"
sleep 0.5

say "The attack: deface index.html and drop a web shell (played with task exec)"
run "${CTR[@]}" task exec --exec-id attack web sh -c \
  'echo "<h1>Hacked by x</h1>" > /var/www/html/index.html && echo "<?php eval(\$_GET[\"cmd\"]); ?>" > /var/www/html/shell.php'

say "What is on this host?"
run "${CF[@]}" ls

say "What did the attacker change? (docker diff lines, read-only, content-hashed)"
run "${CF[@]}" diff web

say "The same as JSON, for the shell script and the defaced page"
"${CF[@]}" diff --format json web | grep -E '"path":"/var/www/html/(shell.php|index.html)"'

say "Browse the container's own layer read-only, without running anything in it"
run "${CF[@]}" mount --upper-only web "$DEMO/view"
run cat "$DEMO/view/var/www/html/shell.php"
run "${CF[@]}" umount "$DEMO/view"

say "Seal the evidence: a signed BagIt bundle with a chain of custody (flags after the name, as with docker)"
run "${CF[@]}" key generate --out "$DEMO/examiner"
run "${CF[@]}" key generate --out "$DEMO/courier"
run "${CF[@]}" collect web -o "$DEMO/web-evidence.tar.gz" --case IR-2026-042 --examiner alice \
  --note "web shell found on web" --sign-key "$DEMO/examiner.key"

say "Anyone can check it later; every hand it passes through signs the custody chain"
run "${CF[@]}" verify "$DEMO/web-evidence.tar.gz" --pubkey "$DEMO/examiner.pub"
run "${CF[@]}" custody add "$DEMO/web-evidence.tar.gz" --action transferred --actor bob \
  --note "to the lab, sealed bag 4711" --sign-key "$DEMO/courier.key"
run "${CF[@]}" verify "$DEMO/web-evidence.tar.gz" --pubkey "$DEMO/examiner.pub" --pubkey "$DEMO/courier.pub"

say "...also with stock tools"
mkdir "$DEMO/unpacked"
run tar -xzf "$DEMO/web-evidence.tar.gz" -C "$DEMO/unpacked"
(cd "$DEMO/unpacked/web-evidence" && run sha256sum -c manifest-sha256.txt | tail -3)

say "Flip one byte in a copy: verify names the file and fails (exit 1)"
cp -a "$DEMO/unpacked/web-evidence" "$DEMO/tampered"
printf 'X' | dd of="$DEMO/tampered/data/rootfs/changes.tar" bs=1 seek=1000 count=1 conv=notrunc 2>/dev/null
set +e
run "${CF[@]}" verify --pubkey "$DEMO/examiner.pub" --pubkey "$DEMO/courier.pub" "$DEMO/tampered"
echo "(exit $?)"
set -e

say "The container is still running, untouched"
run "${CTR[@]}" task ls

say "Which of the changes is the implant? Content rules over the changed files only"
run "${CF[@]}" scan web || true

say "Keep the hacked container as an image for later study: no pause, nothing written into containerd"
run "${CF[@]}" commit web -o "$DEMO/web-hacked.tar" --case IR-2026-042 --name localhost/evidence/web-hacked:IR-2026-042
run "${CTR[@]}" images import "$DEMO/web-hacked.tar"
run "${CTR[@]}" run --rm localhost/evidence/web-hacked:IR-2026-042 study cat /var/www/html/shell.php

say "How was it run? The runtime spec's hardening, rule by rule"
run "${CF[@]}" audit web || true

say "What must stay writable to run it read-only, and what is the attacker's drift"
run "${CF[@]}" harden web

say "Restore service from the clean image, read-only with exactly those mounts"
"${CTR[@]}" task kill -s SIGKILL web >/dev/null 2>&1 || true
for _ in $(seq 50); do "${CTR[@]}" task delete web >/dev/null 2>&1 && break; sleep 0.1; done
mounts=()
for dir in $("${CF[@]}" harden --format json web 2>/dev/null | jq -r '.writable[].path'); do
  mounts+=(--mount "type=tmpfs,src=tmpfs,dst=$dir,options=nosuid:nodev:noexec")
done
run "${CTR[@]}" run -d --read-only "${mounts[@]}" "$IMAGE" web-ro sh -c "$WORKLOAD"
sleep 0.5
run "${CTR[@]}" task exec --exec-id check web-ro sh -c 'cat /run/app/httpd.pid && wget -qO- http://127.0.0.1:8080/index.html'

say "The attacker's defacement now fails"
set +e
run "${CTR[@]}" task exec --exec-id attack2 web-ro sh -c 'echo "<h1>Hacked by x</h1>" > /var/www/html/index.html'
echo "(exit $?)"
set -e

say "Article 2: a suspect image, examined without running it"
go run ./tools/demoimage -image suspect >"$DEMO/suspect.tar"
run "${CTR[@]}" images import --no-unpack "$DEMO/suspect.tar"
run "${CF[@]}" image history docker.io/ctrforensics/suspect:1
run "${CF[@]}" image files --setuid docker.io/ctrforensics/suspect:1
run "${CF[@]}" image layers --show-hidden docker.io/ctrforensics/suspect:1 | grep -v '^  A /bin/'
run "${CF[@]}" image cat --layer 1 docker.io/ctrforensics/suspect:1 /root/.ssh/id_rsa
run "${CF[@]}" scan docker.io/ctrforensics/suspect:1 || true
run "${CF[@]}" packages docker.io/ctrforensics/suspect:1
echo
echo "Done: everything the demo created is removed on exit."
