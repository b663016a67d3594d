# Thin wrapper around CMake. `make run` and `make test` do all the set-up on a
# fresh Debian 12 machine (as root): they install what is missing first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
LISTEN     ?= 127.0.0.1:50051
DATA_DIR   ?= ./var
CTEST_ARGS ?= --output-on-failure

.PHONY: all deps build run test check bench format lint clean

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

bench: build
	@deploy/install-deps.sh --bench
	tests/bench/run.sh $(BUILD)

SOURCES = $(shell git ls-files '*.cc' '*.h')

format:
	@deploy/install-deps.sh --lint
	clang-format -i $(SOURCES)

lint: build
	@deploy/install-deps.sh --lint
	clang-tidy -p $(BUILD) --quiet $(filter %.cc,$(SOURCES))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
