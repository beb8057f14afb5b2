#!/bin/sh
# schemas.sh prints the directory of the official JSON schemas the tests
# validate our outputs against (CTRFORENSICS_SCHEMA_DIR):
#   sarif-2.1.0.json        SARIF 2.1.0 (final, rtm.5), from the npm package
#                           @microsoft/jest-sarif, which ships it;
#   bom-1.6.schema.json     CycloneDX 1.6 with the two schemas it refers to
#   spdx.schema.json        (spdx, jsf-0.82), copied from the module cache of
#   jsf-0.82.schemax.json   our dependency github.com/CycloneDX/cyclonedx-go.
# They are cached outside the checkout (never committed); the first run needs
# npm and the npm registry, later runs do nothing.
set -eu
dir="${HOME:-/root}/.cache/ctrforensics/schemas"
if [ ! -f "$dir/.complete" ]; then
	cdx="$(cd "$(dirname "$0")/.." && "${GO:-go}" list -m -f '{{.Dir}}' github.com/CycloneDX/cyclonedx-go)"
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	(cd "$dir.tmp" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null &&
		tar -xzf microsoft-jest-sarif-1.0.0-beta.0.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json &&
		mv package/lib/schemas/sarif-2.1.0-rtm.5.json sarif-2.1.0.json &&
		rm -rf package microsoft-jest-sarif-1.0.0-beta.0.tgz)
	for f in bom-1.6.schema.json spdx.schema.json jsf-0.82.schemax.json; do
		cp "$cdx/schema/$f" "$dir.tmp/$f"
	done
	chmod 0644 "$dir.tmp"/*
	touch "$dir.tmp/.complete"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
fi
echo "$dir"
