# Thin wrapper around CMake. `make run` and `make test` do all the set-up on a
# fresh Debian 12 machine (as root): they install what is missing first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
TSAN_BUILD ?= build-tsan
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc)
LISTEN     ?= 127.0.0.1:50051
DATA_DIR   ?= ./var
CTEST_ARGS ?= --output-on-failure

.PHONY: all deps build run test check tsan fuzz bench abuse soak format lint clean

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

# ThreadSanitizer build of the table, multi-process and end-to-end tests
# only (what has threads or shares the table), then those tests. Every
# process of the run (test binaries, the daemons and load clients they
# start) writes its reports to $(TSAN_BUILD)/tsan-reports/, so a race in a
# daemon's handler fails the run too, not only one in a test binary.
# ignore_noninstrumented_modules: Debian's gRPC, Protobuf, Abseil and
# libstdc++ are not built with TSan, so it cannot see their synchronisation, and the
# memory calls they make (free, memcpy, sendmsg, epoll_wait, intercepted by
# TSan) would be reported as thousands of races that are not; with it, TSan
# checks what our code does (and misses races on memory only those
# libraries touch). Suppressions: tests/tsan.supp, each with its reason.
# --repeat until-pass:2: TSan slows code 5 to 15 times, and on a loaded
# machine a few e2e tests' timing bounds (the handler's 250 ms shutdown
# grace for 1,000 health watches) can be missed; one retry absorbs that and
# hides no race, since every report stays in tsan-reports/ and fails the run.
TSAN_TARGETS = counter_table_test table_validation_test sorted_list_test multiprocess_test \
               serving_loop_test durable_calls_test countersd_e2e_test metrics_e2e_test
TSAN_ENV = TSAN_OPTIONS="ignore_noninstrumented_modules=1 suppressions=$(CURDIR)/tests/tsan.supp log_path=$(CURDIR)/$(TSAN_BUILD)/tsan-reports/report second_deadlock_stack=1"
tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOUNTERSD_TSAN=ON -DCOUNTERSD_BUILD_BENCHMARKS=OFF
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target $(TSAN_TARGETS)
	rm -rf $(TSAN_BUILD)/tsan-reports && mkdir -p $(TSAN_BUILD)/tsan-reports
	cd $(TSAN_BUILD) && $(TSAN_ENV) ctest $(CTEST_ARGS) -j $(JOBS) -R '^(Table|TableValidation|SortedListTest|MultiProcess|server\.ServingLoopTest|server\.DurableCalls)\.'; \
	  rc1=$$?; $(TSAN_ENV) ctest $(CTEST_ARGS) -j $(JOBS) --repeat until-pass:2 -L e2e; rc2=$$?; \
	  cd tsan-reports && if ls | grep -q .; then head -c 100000 $$(ls | head -1); grep -h SUMMARY * | sort | uniq -c; \
	    echo "tsan: ThreadSanitizer reported the races above (every report: $(TSAN_BUILD)/tsan-reports/)"; exit 1; fi; \
	  [ $$rc1 -eq 0 ] && [ $$rc2 -eq 0 ]

# libFuzzer (clang) + ASan + UBSan build of the fuzz targets, then each one
# for FUZZ_SECONDS from its committed corpus (tests/fuzz/).
fuzz: deps
	@deploy/install-deps.sh --fuzz
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOUNTERSD_FUZZ=ON -DCOUNTERSD_BUILD_BENCHMARKS=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
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

# SOAK_SECONDS (default 600) of mixed load on a real daemon with a handler
# SIGKILL every 30 s and a Snapshot call every 5 s: checks exact totals and
# prints each role's memory at the start, at the end and its peak
# (tests/soak/soak.cc). Not in `make test` nor in CI.
soak: build
	$(if $(SOAK_SECONDS),SOAK_SECONDS=$(SOAK_SECONDS)) $(BUILD)/tests/soak/soak

SOURCES = $(shell git ls-files '*.cc' '*.h')

format:
	@deploy/install-deps.sh --lint
	clang-format -i $(SOURCES)

lint: build
	@deploy/install-deps.sh --lint
	clang-tidy -p $(BUILD) --quiet $(filter %.cc,$(SOURCES))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
