# keytrail — every target CI runs is here; `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
DEMO_EVENTS ?= 20000
DEMO_DIR := target/demo
KEYTRAIL := target/release/keytrail

.PHONY: help build deps test demo bench lint fmt fuzz deploy-check clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

build: ## Build the release binary (target/release/keytrail)
	$(CARGO) build --release --locked -p keytrail

deps: ## Install the outside tools the tests use (prometheus/promtool, tansu)
	scripts/install-prometheus.sh
	scripts/install-tansu.sh

test: deps ## Run every test (unit, golden, property, integration, real brokers)
	# The end-to-end tests start the keytrail binary itself.
	$(CARGO) build --locked -p keytrail --bin keytrail
	KEYTRAIL_REQUIRE_PROMTOOL=1 KEYTRAIL_REQUIRE_TANSU=1 $(CARGO) test --workspace --locked

demo: build ## The whole pipeline in process (Kafka, generator, pipeline, metrics, SIEM receiver); prints a summary
	$(KEYTRAIL) demo --events $(DEMO_EVENTS) --out-dir $(DEMO_DIR)

BENCH_EVENTS ?= 20000
LOOPBACK_EVENTS ?= 1000000
BENCH_CORPUS := benches/data/corpus.jsonl

bench: build ## Run the benches of BENCHMARKS.md on a generated corpus (criterion results in target/criterion)
	@command -v hyperfine >/dev/null || { apt-get update -q && apt-get install -y -q hyperfine; }
	@mkdir -p benches/data
	$(KEYTRAIL) gen --events $(BENCH_EVENTS) --seed 1 > $(BENCH_CORPUS)
	$(CARGO) build --release --locked -p keytrail-benches --bins
	KEYTRAIL_LOOPBACK_EVENTS=$(LOOPBACK_EVENTS) $(CARGO) bench --locked -p keytrail-benches
	hyperfine --warmup 3 --runs 20 -N \
		'target/release/json_roundtrip $(BENCH_CORPUS)' \
		'$(KEYTRAIL) normalize --threads 1 $(BENCH_CORPUS)' \
		'$(KEYTRAIL) normalize $(BENCH_CORPUS)'

lint: ## Check formatting and clippy (warnings are errors)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

deploy-check: deps ## Validate the deploy kit (YAML, PromQL, configs, manifests, systemd units)
	scripts/check-deploy.sh

fmt: ## Format the code
	$(CARGO) fmt --all

fuzz: ## Fuzz the normalizer for FUZZ_SECONDS (needs nightly and cargo-fuzz)
	cd fuzz && $(CARGO) +nightly fuzz run normalize_line -- -max_total_time=$${FUZZ_SECONDS:-60}

clean: ## Remove build output
	$(CARGO) clean
