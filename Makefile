# The README's commands. Everything real lives in meson.build and scripts/; this file only names
# the entry points and installs what they need first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
MESON_OPTS ?=

.PHONY: all deps build test test-unit test-integration test-asan fuzz fuzz-smoke clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The README's test command: unit tests, then integration tests against real processes.
test: build
	scripts/run-tests --unit $(BUILD) --integration $(BUILD) --summary $(BUILD)/test-summary.json --label test

test-unit: build
	scripts/run-tests --unit $(BUILD) --label unit

test-integration: build
	scripts/run-tests --integration $(BUILD) --label integration

# Unit and integration tests again, everything built with AddressSanitizer + UBSan: daemons that
# the integration tests start report memory errors and leaks in their logs, which fails the test.
test-asan: deps
	[ -f $(ASAN_BUILD)/build.ninja ] || meson setup $(ASAN_BUILD) -Dsanitize=true -Dwerror=true $(MESON_OPTS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		scripts/run-tests --unit $(ASAN_BUILD) --integration $(ASAN_BUILD) \
		--summary $(ASAN_BUILD)/test-summary.json --label asan

# libFuzzer targets (clang). fuzz-smoke is the bounded run CI does; `make fuzz` runs longer.
$(FUZZ_BUILD)/build.ninja: | deps
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false

fuzz-smoke: $(FUZZ_BUILD)/build.ninja
	scripts/run-tests --fuzz $(FUZZ_BUILD) --fuzz-runs 20000 --summary $(FUZZ_BUILD)/test-summary.json --label fuzz

fuzz: $(FUZZ_BUILD)/build.ninja
	scripts/run-tests --fuzz $(FUZZ_BUILD) --fuzz-runs 2000000 --label fuzz

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# Keel's main job: a local 3-member keel-kv cluster on loopback (scripts/run-cluster).
.PHONY: run
run: build
	scripts/run-cluster

.PHONY: bench
bench: build
	$(BUILD)/bench/bench_crc32c
	$(BUILD)/bench/bench_raft --dir $(BUILD)/bench-data --seconds 10

# A long run of the consensus simulator: many more seeds than CI's 510 runs.
.PHONY: soak
SOAK_SEEDS ?= 1..20000
soak: build
	$(BUILD)/tests/sim/raft-sim --seeds $(SOAK_SEEDS) --nodes 1,3,5 --quiet
