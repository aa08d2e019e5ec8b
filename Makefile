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

.PHONY: all build run test bench fmt lint vet clean rules-check fuzz e2e

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
	$(GO) run ./bench -binary bin/alertmedic

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

# Each fuzz target briefly; the seeds are the captured payloads, the config
# fixtures and typical matchers and time intervals.
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./alert
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./config
	$(GO) test -run '^$$' -fuzz '^FuzzCompile$$' -fuzztime $(FUZZTIME) ./routing

fmt:
	gofmt -s -w .

vet:
	$(GO) vet ./...

lint: vet
	@out=$$(gofmt -s -l .); if [ -n "$$out" ]; then echo "gofmt -s needed on:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
