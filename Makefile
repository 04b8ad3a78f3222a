# fwd — security groups for a Linux host. `make` prints this help.
GO        ?= go
BIN       := bin
PKGS      := ./...
STATICCHECK_VERSION := v0.8.2
FUZZTIME  ?= 20s
FUZZPARALLEL ?= 2

.DEFAULT_GOAL := help

.PHONY: help
help: ## print this help
	@echo "fwd make targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/fwd and bin/fwctl
	$(GO) build -trimpath -o $(BIN)/ ./cmd/fwd ./cmd/fwctl

.PHONY: deps
deps: ## as root: apt-get install what the end-to-end tests need, when missing
	@sh testdata/install-deps.sh

.PHONY: test
test: deps ## run every test (as root also the end-to-end tests in network namespaces)
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

SOAK ?= 5m

.PHONY: soak
soak: deps ## as root: the soak, SOAK long (default 5m): mixed traffic, an edit and a reload every second, resources flat
	FWD_SOAK=$(SOAK) $(GO) test -count=1 -timeout 2h -run '^TestSoak$$' -v ./internal/e2e

.PHONY: test-short
test-short: ## unit tests only, no root needed
	$(GO) test -short -count=1 $(PKGS)

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

.PHONY: fuzz
fuzz: ## run every fuzz target (found, not listed) for FUZZTIME each (default 20s)
	@GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZPARALLEL=$(FUZZPARALLEL) sh testdata/fuzz.sh

SHARED_DATA ?= ../shared/data

BENCH_OUT ?= bench/out

.PHONY: bench
bench: ## about 8 min (2 vCPUs): match, decode, compile benchmarks, then pcap replay against tcpdump; reports in bench/out (untracked)
	@mkdir -p $(BENCH_OUT)
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./internal/filter ./internal/packet | tee $(BENCH_OUT)/engine.txt
	@command -v tcpdump >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tcpdump >/dev/null; } || echo "bench: tcpdump missing, the anchor column will be n/a"
	$(GO) run ./bench/replay -data $(SHARED_DATA) -report $(BENCH_OUT)/RESULTS-replay.md -svg $(BENCH_OUT)/results.svg
	@echo "bench: reports in $(BENCH_OUT); the committed bench/RESULTS.md is unchanged (make bench-results refreshes the committed replay report and chart)"

.PHONY: bench-results
bench-results: bench ## make bench, then copy its replay report and chart over the committed ones (edit bench/RESULTS.md by hand from bench/out)
	sed 's|](results.svg)|](../results.svg)|' $(BENCH_OUT)/RESULTS-replay.md >bench/replay/RESULTS-replay.md
	cp $(BENCH_OUT)/results.svg bench/results.svg

.PHONY: demo
demo: deps ## as root: nginx behind fwd in network namespaces, a short transcript of what passes
	@GO=$(GO) bash testdata/demo/demo.sh

.PHONY: bench-live
bench-live: deps ## as root: new flows/s and TCP bulk through the kernel, plain iptables vs fwd (about 75 s)
	@GO=$(GO) bash bench/live/run.sh

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN)
