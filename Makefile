# dsar: run `make help` for the targets.
.DEFAULT_GOAL := help
GO ?= go

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## run API, workers and scheduler with the demo shop on embedded stores
	$(GO) run ./cmd/dsar dev --demo

.PHONY: build
build: ## build bin/dsar
	$(GO) build -o bin/dsar ./cmd/dsar

.PHONY: test
test: ## run every test (real Redis at DSAR_TEST_REDIS_ADDR or in-process fallback; stores: see README)
	$(GO) test -count=1 -timeout 15m ./...

.PHONY: test-mongo
test-mongo: ## run the tests above the store drivers on MongoDB's (embedded FerretDB, or DSAR_TEST_MONGO_URI)
	DSAR_TEST_STORE=mongodb $(GO) test -count=1 -timeout 15m ./app/... ./handlers/... ./workers/...

.PHONY: race
race: ## run every test under the race detector (needs cgo: a C compiler; the binary's long e2e tests skip, see docs/reliability.md)
	$(GO) test -race -count=1 -timeout 20m ./...

# FUZZTIME is how long `make fuzz` runs each fuzz target: a time, or a
# count of inputs (2000x; what CI runs, see .ci/run).
FUZZTIME ?= 1m

.PHONY: fuzz
fuzz: ## run every fuzz target (func FuzzX in a _test.go) for FUZZTIME each (default 1m; CI runs 2000x)
	@set -e; for file in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  pkg=./$$(dirname "$$file" | sed 's|^\./||'); \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
	    echo "fuzz: $$pkg $$target for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
	  done; \
	done

.PHONY: screenshots
screenshots: ## refresh docs/screenshots from the browser tests (needs Chromium)
	DSAR_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots DSAR_TEST_REQUIRE_BROWSER=1 $(GO) test -count=1 -run 'Browser' ./cmd/dsar/ ./internal/browsertest/

.PHONY: lint
lint: ## go vet and gofmt; golangci-lint (v2, .golangci.yaml) too when installed
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	@if command -v golangci-lint >/dev/null; then golangci-lint run; else echo "golangci-lint not installed; skipped"; fi

# BENCH is the sizes `make bench` runs: default (about 15 minutes on 2 cores), full (issue 18's
# sizes, hours; what `make bench-full` runs) or quick (checks the report generator only).
BENCH ?= default
# BENCH_FLAGS go to the report generator: -only intake,history, -strict, -raw FILE (go run ./bench/report -h).
BENCH_FLAGS ?=
# COUNT is how many times `make bench-raw` runs each benchmark.
COUNT ?= 5

.PHONY: bench
bench: ## run ./bench's benchmarks (BENCH=default, about 15 min; full) and write docs/benchmarks.md
	GO=$(GO) $(GO) run ./bench/report -size $(BENCH) $(BENCH_FLAGS)

.PHONY: bench-full
bench-full: ## make bench at issue 18's sizes (100k stored, 1M export records, 10k burst; hours)
	GO=$(GO) $(GO) run ./bench/report -size full $(BENCH_FLAGS)

.PHONY: bench-raw
bench-raw: ## every benchmark of the module as plain go test output, COUNT times (default 5), for benchstat
	$(GO) test -run '^$$' -bench . -benchmem -count $(COUNT) -timeout 60m ./...
