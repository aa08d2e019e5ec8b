# alertmedic: see README.md. `make run` and `make test` are all a new user needs.

GO       ?= go
PKG      := github.com/alertmedic/alertmedic
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X $(PKG)/app.Version=$(VERSION) -X $(PKG)/app.Revision=$(REVISION)
# make run's flags; override e.g. RUN_FLAGS="--config.file=my.yml".
RUN_FLAGS ?= --log.format=console
# Bound on the whole suite; CI allows 90 minutes, the suite takes a few.
TEST_TIMEOUT ?= 8m

.PHONY: all build run test bench fmt lint vet clean rules-check fuzz fuzz-corpus e2e redis-servers redis-servers-stop

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/alertmedic ./cmd/alertmedic

run: build
	./bin/alertmedic serve $(RUN_FLAGS)

test:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# Benchmarks start the real daemon and send loopback traffic only; the table
# they print goes into BENCHMARKS.md.
bench: build
	$(GO) run ./tools/bench -binary bin/alertmedic

# promtool check rules, promtool test rules and amtool check-config with the
# real binaries (Debian's prometheus and prometheus-alertmanager packages),
# and every dashboard expression parsed by promtool.
rules-check:
	rules/check.sh
	dashboards/check.sh

# Real Prometheus evaluating rules/ and real Alertmanager with
# rules/alertmanager.yml in front of alertmedic on Redis, with local stand-ins
# for Slack, PagerDuty, the orchestrator and the metrics target.
e2e:
	$(GO) test -tags e2e -count=1 -v -timeout 5m ./e2e/

# Each fuzz target briefly. It starts from its seeds (the captured payloads
# and malformed ones, the config fixtures, typical matchers and time
# intervals) and from its corpus in <package>/testdata/fuzz/<target>, which
# plain `go test` also replays. The budgets are execution counts, about 10 s
# each on a quiet 2-core machine: a duration budget can fail with a bare
# "context deadline exceeded" when it ends while a worker is mid-input on a
# loaded machine (go.dev/issue/75804). FUZZTIME=30s (or 1000x) overrides
# every target's budget.
FUZZ_TARGETS := alert:FuzzDecode:50000x config:FuzzParse:60000x routing:FuzzCompile:100000x remediation:FuzzHTTPURL:60000x
FUZZTIME ?=
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; budget=$${rest#*:}; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $${FUZZTIME:-$$budget} ./$$pkg; \
	done

# Fuzz each target for FUZZKEEP and add the inputs it found that reach new
# code to its corpus in testdata/fuzz (commit them).
FUZZKEEP ?= 60s
fuzz-corpus:
	@set -e; cache=$$($(GO) env GOCACHE)/fuzz/$(PKG); for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZKEEP) ./$$pkg; \
		mkdir -p $$pkg/testdata/fuzz/$$fn; \
		if [ -d $$cache/$$pkg/$$fn ]; then cp -n $$cache/$$pkg/$$fn/* $$pkg/testdata/fuzz/$$fn/; fi; \
		echo "$$pkg/testdata/fuzz/$$fn: $$(ls $$pkg/testdata/fuzz/$$fn | wc -l) inputs"; \
	done

# A Redis Cluster and a Sentinel group on 127.0.0.1 for the tests that need
# more than one Redis, started by scripts/redis-servers; .ci/run uses these
# targets, so their ports are set here only. Cluster: 3 masters and their
# replicas on 7100-7105 (bus ports 17100-17105). Sentinel group: master 7200,
# replica 7201, Sentinels 7202-7204, master name "alertmedic". It restarts
# them if they run, and prints a line per server and the REDIS_CLUSTER_ADDRS,
# REDIS_SENTINEL_ADDRS and REDIS_SENTINEL_MASTER that the tests read:
#   export $(make -s redis-servers | grep ^REDIS_)
REDIS_SERVERS_DIR   ?= .cache/redis-servers
REDIS_CLUSTER_PORT  ?= 7100
REDIS_SENTINEL_PORT ?= 7200
redis-servers: redis-servers-stop
	@scripts/redis-servers start cluster --dir $(REDIS_SERVERS_DIR)/cluster --port $(REDIS_CLUSTER_PORT)
	@scripts/redis-servers start sentinel --dir $(REDIS_SERVERS_DIR)/sentinel --port $(REDIS_SENTINEL_PORT)

redis-servers-stop:
	@scripts/redis-servers stop --dir $(REDIS_SERVERS_DIR)/cluster
	@scripts/redis-servers stop --dir $(REDIS_SERVERS_DIR)/sentinel

fmt:
	gofmt -s -w .

vet:
	$(GO) vet ./...

# golangci-lint, pinned, installed into the git-ignored .cache/tools; its
# rules (.golangci.yml) include ARCHITECTURE's layering (depguard).
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := .cache/tools/golangci-lint-$(GOLANGCI_LINT_VERSION)

$(GOLANGCI_LINT):
	mkdir -p .cache/tools
	GOBIN=$(CURDIR)/.cache/tools $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv .cache/tools/golangci-lint $@

lint: vet $(GOLANGCI_LINT)
	@out=$$(gofmt -s -l .); if [ -n "$$out" ]; then echo "gofmt -s needed on:"; echo "$$out"; exit 1; fi
	$(GOLANGCI_LINT) run ./...
	scripts/lint-selftest $(GOLANGCI_LINT)

clean:
	rm -rf bin
