# Thin wrapper around CMake. `make run` and `make test` do all the set-up on a
# fresh Debian 12 machine (as root): they install what is missing first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc)
LISTEN     ?= 127.0.0.1:50051
DATA_DIR   ?= ./var
CTEST_ARGS ?= --output-on-failure

.PHONY: all deps build run test check fuzz bench abuse format lint clean

all: build

deps:
	@deploy/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	mkdir -p $(DATA_DIR)
	$(BUILD)/server/countersd --listen=$(LISTEN) --data-dir=$(DATA_DIR)

test: build
	cd $(BUILD) && ctest $(CTEST_ARGS) -j $(JOBS)

# ASan + UBSan build of everything, then the whole test suite.
check: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOUNTERSD_SANITIZE=ON -DCOUNTERSD_BUILD_BENCHMARKS=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest $(CTEST_ARGS) -j $(JOBS)

# libFuzzer (clang) + ASan + UBSan build of the fuzz targets, then each one
# for FUZZ_SECONDS from its committed corpus (tests/fuzz/).
fuzz: deps
	@deploy/install-deps.sh --fuzz
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOUNTERSD_FUZZ=ON -DCOUNTERSD_BUILD_BENCHMARKS=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target key_fuzz snapshot_parser_fuzz map_file_fuzz request_fuzz
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	@deploy/install-deps.sh --bench
	tests/bench/run.sh $(BUILD)
	$(MAKE) abuse BUILD=$(BUILD)

# The abuse patterns of issue 11 at the red team's sizes (ABUSE_FULL: 100,000
# streams, 40 s of slowloris, 10,000 idle connections) on loopback, bounded in
# time; prints per pattern each handler's RssAnon peak and final value, the
# canary's p50/p99 and the connections accepted and refused. Self-contained;
# `make bench` runs it after the side-by-side run.
abuse: build
	cmake --build $(BUILD) -j $(JOBS) --target abuse_test
	ABUSE_FULL=1 $(BUILD)/tests/abuse/abuse_test > $(BUILD)/abuse.log 2>&1; rc=$$?; \
	  grep '^abuse-report' $(BUILD)/abuse.log; \
	  [ $$rc -eq 0 ] || echo "abuse: a check failed; see $(BUILD)/abuse.log"; exit $$rc

SOURCES = $(shell git ls-files '*.cc' '*.h')

format:
	@deploy/install-deps.sh --lint
	clang-format -i $(SOURCES)

lint: build
	@deploy/install-deps.sh --lint
	clang-tidy -p $(BUILD) --quiet $(filter %.cc,$(SOURCES))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
