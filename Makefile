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

# The version fwd --version and fwctl version print: git describe when
# this is a git checkout; the commit comes from the build's VCS stamp.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
GOLDFLAGS := -X github.com/fwd-project/fwd/internal/buildinfo.version=$(VERSION)

.PHONY: build
build: ## build bin/fwd and bin/fwctl
	$(GO) build -trimpath -buildvcs=auto -ldflags '$(GOLDFLAGS)' -o $(BIN)/ ./cmd/fwd ./cmd/fwctl

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

.PHONY: bench-fleet
bench-fleet: ## about 1 min: 1,000 simulated fleet hosts against one etcd (etcd-server), edits timed to the slowest host (figures in bench/RESULTS.md)
	$(GO) test -count=1 -run '^TestFleetScale$$' -timeout 20m ./internal/fleet -v -fleet.hosts 1000 -fleet.edits 20

.PHONY: demo-docker
demo-docker: deps ## as root: a port published by dockerd closed by fwd, then opened with fwctl allow
	@GO=$(GO) bash testdata/demo/demo-docker.sh

.PHONY: bench-live
bench-live: deps ## as root, about 5 min: new flows/s, TCP conns and bulk, plain iptables vs fwd; new flows over 7 runs; the ClassBench large table vs linear iptables and an nftables set (SECTIONS="basic flows7 large" picks)
	@GO=$(GO) bash bench/live/run.sh

# make install / uninstall / deb. PREFIX /usr/local by default (the .deb
# uses /usr); DESTDIR stages the tree elsewhere.
PREFIX    ?= /usr/local
DESTDIR   ?=
SBINDIR   ?= $(PREFIX)/sbin
BINDIR    ?= $(PREFIX)/bin
DATADIR   ?= $(PREFIX)/share
MANDIR    ?= $(DATADIR)/man
UNITDIR   ?= /etc/systemd/system
SYSCONFDIR ?= /etc
DIST      ?= dist

.PHONY: man
man: ## rewrite man/fwd.8 and man/fwctl.8 from fwd --help and fwctl --help
	$(GO) test -count=1 -run '^TestManPage$$' ./cmd/fwd ./cmd/fwctl -update

.PHONY: install
install: build ## as root: install fwd, fwctl, the systemd unit, man pages and the fail2ban action; /etc/fwd/rules.yaml only when absent
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DATADIR)/fwd $(DESTDIR)$(DATADIR)/fwd/applications.d $(DESTDIR)$(DATADIR)/doc/fwd $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(DATADIR)/zsh/vendor-completions \
		$(DESTDIR)$(SYSCONFDIR)/fwd $(DESTDIR)$(SYSCONFDIR)/fail2ban/action.d
	install -m 0755 $(BIN)/fwd $(DESTDIR)$(SBINDIR)/fwd
	install -m 0755 $(BIN)/fwctl $(DESTDIR)$(BINDIR)/fwctl
	install -m 0644 rules/default.yaml $(DESTDIR)$(DATADIR)/fwd/default.yaml
	install -m 0644 profiles/* $(DESTDIR)$(DATADIR)/fwd/applications.d/
	install -m 0644 rules/README.md $(DESTDIR)$(DATADIR)/doc/fwd/rules.md
	install -m 0644 man/fwd.8 man/fwctl.8 $(DESTDIR)$(MANDIR)/man8/
	sed 's|/usr/sbin/fwd|$(SBINDIR)/fwd|' packaging/fwd.service > $(BIN)/fwd.service
	install -m 0644 $(BIN)/fwd.service $(DESTDIR)$(UNITDIR)/fwd.service
	$(BIN)/fwctl completion bash > $(BIN)/fwctl.bash
	$(BIN)/fwctl completion zsh > $(BIN)/_fwctl
	install -m 0644 $(BIN)/fwctl.bash $(DESTDIR)$(DATADIR)/bash-completion/completions/fwctl
	install -m 0644 $(BIN)/_fwctl $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_fwctl
	install -m 0644 packaging/fail2ban/fwd.conf packaging/fail2ban/fwd-multiport.conf $(DESTDIR)$(SYSCONFDIR)/fail2ban/action.d/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/fwd/rules.yaml ]; then \
		echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/fwd/rules.yaml"; \
	else \
		install -m 0644 rules/default.yaml $(DESTDIR)$(SYSCONFDIR)/fwd/rules.yaml; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "fwd is installed, not enabled or started. Check that $(SYSCONFDIR)/fwd/rules.yaml lets your SSH in, then: systemctl enable --now fwd"

.PHONY: uninstall
uninstall: ## as root: stop fwd (it removes its kernel rules) and remove what make install put in place, except /etc/fwd
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl disable --now fwd.service 2>/dev/null || true; fi
	rm -f $(DESTDIR)$(SBINDIR)/fwd $(DESTDIR)$(BINDIR)/fwctl $(DESTDIR)$(UNITDIR)/fwd.service \
		$(DESTDIR)$(MANDIR)/man8/fwd.8 $(DESTDIR)$(MANDIR)/man8/fwctl.8 \
		$(DESTDIR)$(DATADIR)/fwd/default.yaml $(DESTDIR)$(DATADIR)/doc/fwd/rules.md \
		$(addprefix $(DESTDIR)$(DATADIR)/fwd/applications.d/,$(notdir $(wildcard profiles/*))) \
		$(DESTDIR)$(DATADIR)/bash-completion/completions/fwctl $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_fwctl \
		$(DESTDIR)$(SYSCONFDIR)/fail2ban/action.d/fwd.conf $(DESTDIR)$(SYSCONFDIR)/fail2ban/action.d/fwd-multiport.conf
	-rmdir $(DESTDIR)$(DATADIR)/fwd/applications.d $(DESTDIR)$(DATADIR)/fwd $(DESTDIR)$(DATADIR)/doc/fwd 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "uninstall: $(SYSCONFDIR)/fwd (your rules) is left in place"

.PHONY: deb
deb: ## build the Debian package into DIST (default dist/) with dpkg-deb
	@GO=$(GO) VERSION=$(VERSION) DIST=$(DIST) sh packaging/deb.sh

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN) $(DIST)
