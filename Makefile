# Ficus. The two commands a newcomer needs: `make run` and `make test`.
GO        ?= go
BIN       := bin/ficus
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
FUZZTIME  ?= 30000x

.PHONY: run test build lint bench fuzz clean

## run: the all-in-one demo on the embedded in-memory store
run: build
	$(BIN) demo

## build: compile bin/ficus
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ficus

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## test: lint, then every test with the race detector against a real PostgreSQL, then short fuzz runs
test: lint
	@.ci/with-postgres.sh $(GO) test -race -count=1 -timeout 10m ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

## fuzz: each fuzz target for FUZZTIME (default 30000 inputs; e.g. FUZZTIME=1m)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./routes
	$(GO) test -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZTIME) ./routes

## bench: Go benchmarks, the wrk proxy comparison and the IDP load on PostgreSQL; writes docs/benchmarks.md
bench: build
	.ci/with-postgres.sh strangler/bench/load.sh
	.ci/with-postgres.sh idp/bench/load.sh

clean:
	rm -rf bin .bench
