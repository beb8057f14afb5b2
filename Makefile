# ctrforensics: read-only forensics for containerd hosts.
# Targets that touch containerd, mounts or /run need root (the tests mount overlayfs).

GO        ?= go
BIN       := bin/ctrforensics
PKG       := github.com/ctrforensics/ctrforensics
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.Commit=$(COMMIT)
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build deps test test-unit test-integration lint bench demo demo-clean clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ctrforensics

deps:
	bash scripts/install-deps.sh

# Every test: unit tests, integration tests against a private containerd and
# runc, and the CLI end-to-end tests. CI runs exactly this.
test: deps build
	CTRFORENSICS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 30m ./...

test-unit: build
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

test-integration: deps build
	CTRFORENSICS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 30m -v ./integration/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
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
	rm -rf bin
