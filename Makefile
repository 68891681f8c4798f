# keytrail — every target CI runs is here; `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
DEMO_EVENTS ?= 20000
DEMO_DIR := target/demo
KEYTRAIL := target/release/keytrail
# Profile-guided build: its own target directory, so that it never
# invalidates the plain release build's cache.
PGO_DIR := target/pgo
PGO_KEYTRAIL := $(PGO_DIR)/use/release/keytrail
# llvm-profdata must be of rustc's LLVM version (rustup's `llvm-tools`
# component, or a distribution's llvm-N package).
RUSTC_LLVM := $(shell rustc -vV 2>/dev/null | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
LLVM_PROFDATA ?= $(or $(shell command -v llvm-profdata-$(RUSTC_LLVM)),$(wildcard $(shell rustc --print sysroot 2>/dev/null)/lib/rustlib/*/bin/llvm-profdata),llvm-profdata)

.PHONY: help build build-pgo deps test demo bench lint fmt fuzz deploy-check clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## Build the release binary (target/release/keytrail)
	$(CARGO) build --release --locked -p keytrail

build-pgo: ## Build the release binary optimized with a profile of its own run (target/pgo/use/release/keytrail; see BENCHMARKS.md)
	rm -rf $(PGO_DIR)/raw $(PGO_DIR)/train
	mkdir -p $(PGO_DIR)/train
	RUSTFLAGS="-Cprofile-generate=$(abspath $(PGO_DIR))/raw" \
		$(CARGO) build --release --locked -p keytrail --target-dir $(PGO_DIR)/generate
	# Training: a generated corpus (not the benches' seed) through
	# `normalize`, and the whole pipeline through `demo`.
	$(PGO_DIR)/generate/release/keytrail gen --events 20000 --seed 7 > $(PGO_DIR)/train/corpus.jsonl
	$(PGO_DIR)/generate/release/keytrail normalize $(PGO_DIR)/train/corpus.jsonl > /dev/null 2> /dev/null
	$(PGO_DIR)/generate/release/keytrail demo --events 100000 --out-dir $(PGO_DIR)/train/demo > /dev/null
	$(LLVM_PROFDATA) merge -o $(PGO_DIR)/keytrail.profdata $(PGO_DIR)/raw
	RUSTFLAGS="-Cprofile-use=$(abspath $(PGO_DIR))/keytrail.profdata" \
		$(CARGO) build --release --locked -p keytrail --target-dir $(PGO_DIR)/use
	@echo "built $(PGO_KEYTRAIL)"

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
	# The loopback again: with the OTLP protocol, then the floor (librdkafka
	# and the mock broker alone).
	KEYTRAIL_LOOPBACK_EVENTS=$(LOOPBACK_EVENTS) KEYTRAIL_LOOPBACK_PROTOCOL=otlp \
		$(CARGO) bench --locked -p keytrail-benches --bench loopback
	KEYTRAIL_LOOPBACK_EVENTS=$(LOOPBACK_EVENTS) KEYTRAIL_LOOPBACK_FLOOR=consume \
		$(CARGO) bench --locked -p keytrail-benches --bench loopback
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
