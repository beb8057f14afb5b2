# ctrforensics: read-only forensics for containerd hosts.
# Targets that touch containerd, mounts or /run need root (the tests mount overlayfs).

GO        ?= go
BIN       := bin/ctrforensics
PKG       := github.com/ctrforensics/ctrforensics
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.Commit=$(COMMIT)
STATICCHECK_VERSION ?= v0.8.2
# One static binary: no cgo, so it never trusts the libc of the host it is
# copied onto.
GOBUILD   := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

# The release targets (`make release`) and the packages an examiner's laptop
# needs (verify, custody, key): they must build and pass vet on every OS.
RELEASE_PLATFORMS := linux/amd64 linux/arm64 darwin/arm64 darwin/amd64 windows/amd64
PORTABLE_PKGS     := ./forensic ./forensic/attest ./forensic/bagit ./forensic/bundle ./forensic/custody ./forensic/history \
                     ./forensic/objstore

# The YARA build (scan --rules): cgo, Debian's libyara-dev (4.2.3) and its
# dependencies linked statically, so the binary still runs on any host.
YARA_BIN     := bin/ctrforensics-yara
YARA_TAGS    := yara,yara_no_pkg_config
YARA_LDFLAGS := -lyara -lmagic -ljansson -lcrypto -lz -lbz2 -llzma -lm -ldl -lpthread
YARA_ENV     := CGO_ENABLED=1 CGO_LDFLAGS='$(YARA_LDFLAGS)'

# What every integration run gets: the official schemas, the versitygw S3
# server and a real kube-apiserver with etcd, each built or fetched once into
# a cache outside the checkout (so never inside a test's timeout; the
# kube-apiserver build is the long one: about 13 CPU-minutes on 2 idle cores,
# once), the binary under test, and root-only tests failing instead of
# skipping.
INTEGRATION := schemas=$$(bash scripts/schemas.sh) && vgw=$$(bash scripts/versitygw.sh) && \
	kube=$$(bash scripts/kubeapiserver.sh) && \
	CTRFORENSICS_SCHEMA_DIR=$$schemas CTRFORENSICS_VERSITYGW=$$vgw CTRFORENSICS_KUBE=$$kube CTRFORENSICS_TEST_ROOT=1 \
	CTRFORENSICS_BIN=$(CURDIR)/$(BIN)

.PHONY: build-yara test-yara test-s3 test-kube
.PHONY: all build release cross portable deps test test-containerd2 test-s3 test-unit test-integration lint bench demo demo-clean clean

all: build

build:
	$(GOBUILD) -o $(BIN) ./cmd/ctrforensics

build-yara:
	$(YARA_ENV) $(GO) build -tags $(YARA_TAGS) -trimpath -ldflags '$(LDFLAGS) -extldflags -static' -o $(YARA_BIN) ./cmd/ctrforensics

# The YARA matcher against Debian's yara CLI on the same fixtures, and the
# YARA build's scan --rules end to end.
test-yara: build build-yara
	$(YARA_ENV) $(GO) vet -tags $(YARA_TAGS) ./forensic/scan/yara ./cmd/ctrforensics
	$(YARA_ENV) $(GO) test -count=1 -tags $(YARA_TAGS) ./forensic/scan/yara
	CTRFORENSICS_YARA_BIN=$(CURDIR)/$(YARA_BIN) CTRFORENSICS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -run TestScanYaraBuild ./integration

# dist/: one binary per platform and SHA256SUMS.
release:
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "build $$p"; \
		GOOS=$$os GOARCH=$$arch $(GOBUILD) -o dist/ctrforensics-$$os-$$arch$$ext ./cmd/ctrforensics; \
	done
	cd dist && sha256sum ctrforensics-* > SHA256SUMS

# Every release platform compiles (no output kept), and the portable
# packages type-check with their tests on macOS and Windows.
cross: portable
	@set -e; for p in $(RELEASE_PLATFORMS); do \
		echo "cross-compile $$p"; \
		GOOS=$${p%/*} GOARCH=$${p#*/} CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/ctrforensics; \
	done

portable:
	@set -e; for os in darwin windows; do \
		echo "vet portable packages for $$os"; \
		GOOS=$$os CGO_ENABLED=0 $(GO) vet $(PORTABLE_PKGS); \
	done

deps:
	bash scripts/install-deps.sh

# Every test: lint, the cross-compilation of every release platform, unit
# tests, and the integration tests (a private containerd and runc, the CLI
# end to end) twice: against Debian's containerd 1.6 and against containerd
# 2.x built from the Go module proxy (cached outside the checkout by
# scripts/containerd2.sh). CI runs exactly this, as root;
# CTRFORENSICS_TEST_ROOT=1 makes a root-only test fail instead of skipping.
# The integration tests compare the host's mount table before and after each
# command, so they run alone, after the unit tests (which mount overlays too).
# The package tests take their oracle's input, a debootstrap'ed Debian root,
# from scripts/debian-root.sh (cached outside the checkout too). SARIF and
# CycloneDX outputs are validated against their official JSON schemas,
# fetched and cached by scripts/schemas.sh; the object store and Kubernetes
# tests run a real versitygw and a real kube-apiserver with etcd, built once
# from the Go module proxy (see INTEGRATION).
test: deps build lint cross
	root=$$(bash scripts/debian-root.sh) && schemas=$$(bash scripts/schemas.sh) && \
		CTRFORENSICS_DEBIAN_ROOT=$$root CTRFORENSICS_DEBIAN_TAR=$${root%.d}.tar CTRFORENSICS_TEST_ROOT=1 \
		CTRFORENSICS_SCHEMA_DIR=$$schemas \
		$(GO) test -count=1 -timeout 30m $$($(GO) list ./... | grep -v /integration)
	$(INTEGRATION) $(GO) test -count=1 -timeout 30m ./integration/...
	$(MAKE) test-containerd2
	$(MAKE) test-yara

# The second pass leaves out the tests whose subject does not touch the
# daemon (a tree planted in the upper directory by descriptor, sparse-file
# hashing, the object store, the Kubernetes API server): the 1.6 pass runs
# them, and they are the longest of the suite.
DAEMON_INDEPENDENT := ^(TestDiffAndCollectDeepChain|TestCollectSparseFiles|TestS3.*|TestK8sAPIServer)$$

test-containerd2:
	ctrd=$$(bash scripts/containerd2.sh) && echo "integration tests against $$($$ctrd --version)" && \
		$(INTEGRATION) CTRFORENSICS_TEST_CONTAINERD=$$ctrd $(GO) test -count=1 -timeout 30m \
		-skip '$(DAEMON_INDEPENDENT)' ./integration/...

# The object storage tests alone (collect -o s3://, verify s3://, cleanup of a
# killed upload), against versitygw built once by scripts/versitygw.sh. The
# integration runs of `test` include them (they build the server the same way).
test-s3: build
	$(INTEGRATION) $(GO) test -count=1 -timeout 30m -run 'TestS3' ./integration/...

# k8s collect against a real kube-apiserver and etcd (TestK8sAPIServer; no
# kubelet: the test plays it), both built once from the Go module proxy by
# scripts/kubeapiserver.sh into a cache outside the checkout. Not part of
# `test`: the first build takes longer than CI can spare (see the README).
test-kube: build
	$(INTEGRATION) $(GO) test -count=1 -timeout 30m -run 'TestK8sAPIServer' ./integration/...

# Unit tests only; without root, the tests that need it are skipped.
test-unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

test-integration: deps build
	$(INTEGRATION) $(GO) test -count=1 -timeout 30m -v ./integration/...

lint: portable
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	@bins=$$(git ls-files -z | xargs -0 -r file | grep -E ': .*(ELF|Mach-O|PE32)' | cut -d: -f1); \
		if [ -n "$$bins" ]; then echo "git tracks build outputs: $$bins"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# A benchmark report (not a timed test): the overlay fast path against the
# double walk docker diff and nerdctl diff use, with medians, ratios and peak RSS.
bench: build
	$(GO) run ./tools/benchreport -bin $(BIN)

demo: deps build
	bash scripts/demo.sh

demo-clean:
	bash scripts/demo.sh clean

clean:
	rm -rf bin dist
