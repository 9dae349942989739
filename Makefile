# Ficus. The two commands a newcomer needs: `make run` and `make test`.
GO        ?= go
BIN       := bin/ficus
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
FUZZTIME  ?= 30000x

.PHONY: run test build static lint chromium bench fuzz clean

## run: the all-in-one demo on the embedded in-memory store
run: build
	$(BIN) demo

## build: compile bin/ficus
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ficus

# STATIC_BIN is where `make static` writes the release binary.
STATIC_BIN ?= bin/ficus-static

## static: the release binary the Dockerfile ships: no cgo (a static ELF), paths trimmed, symbols stripped
static:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(STATIC_BIN) ./cmd/ficus

# LINT_PENDING: folders whose staticcheck and deadcode findings do not fail
# lint yet, while they are being cleaned (space-separated, each a prefix of
# the reported path). Delete a folder to check it too; empty checks all.
LINT_PENDING :=

# lint_filter drops report lines under LINT_PENDING (an empty list keeps
# all), and the go command's own "go: downloading" lines: on a fresh machine
# the first run fetches the tools, which is no finding.
lint_filter = grep -v -e '^go: downloading ' $(if $(strip $(LINT_PENDING)),$(foreach p,$(LINT_PENDING),-e '^$(p)'),-e '^$$') || true

## lint: gofmt, go vet, staticcheck and deadcode -test (both pinned in go.mod's tool block)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@echo "$(GO) tool staticcheck ./..."; \
	out=$$($(GO) tool staticcheck ./... 2>&1 | $(lint_filter)); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi
	@# deadcode exits 0 whatever it finds: any line it prints fails lint.
	@echo "$(GO) tool deadcode -test ./..."; \
	out=$$($(GO) tool deadcode -test ./... 2>&1 | $(lint_filter)); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi

## chromium: Debian's chromium, which the browser test drives; installed when missing and make runs as root
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "make: installing Debian's chromium for the browser test"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	  else \
	    echo "make: the browser test needs Debian's chromium at /usr/bin/chromium and make is not running as root:" >&2; \
	    echo "  install it (sudo apt-get install chromium) or run make test as root, which installs it" >&2; \
	    exit 1; \
	  fi; \
	fi

## test: lint, chromium, then every test with the race detector against a real PostgreSQL, then short fuzz runs
test: lint chromium
	@.ci/with-postgres.sh $(GO) test -race -count=1 -timeout 13m ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

## fuzz: each fuzz target for FUZZTIME (default 30000 inputs; e.g. FUZZTIME=1m)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./routes
	$(GO) test -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZTIME) ./routes
	$(GO) test -run '^$$' -fuzz '^FuzzCharClasses$$' -fuzztime $(FUZZTIME) ./routes
	$(GO) test -run '^$$' -fuzz '^FuzzReadAnswer$$' -fuzztime $(FUZZTIME) ./strangler/bridge

## bench: Go benchmarks, the wrk proxy comparison, the IDP load and route revisions under load on PostgreSQL; writes docs/benchmarks.md
bench: build
	.ci/with-postgres.sh strangler/bench/load.sh
	.ci/with-postgres.sh idp/bench/load.sh
	.ci/with-postgres.sh routes/revisions/bench/load.sh

clean:
	rm -rf bin .bench
