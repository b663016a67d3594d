#!/usr/bin/env bash
# Side-by-side benchmark of countersd against Redis (no persistence, and AOF
# with fsync every second) and memcached on this machine, plus the table
# microbenchmarks, snapshot pauses, memory and startup time (issue 6).
#
#   tests/bench/run.sh [BUILD_DIR]        # what `make bench` runs; BUILD_DIR defaults to build
#
# Prints a Markdown report and writes it to BUILD_DIR/bench-report.md (raw
# figures in BUILD_DIR/bench-report.json). Takes about 8 minutes. Everything
# it starts listens on 127.0.0.1 free ports and is stopped when it ends or is
# interrupted. Knobs (environment): BENCH_SECONDS (measured seconds per run,
# default 5), BENCH_REPS (runs per cell, default 3; the median is reported),
# BENCH_KEYS (distinct keys, default 10000), BENCH_LOCAL_SECONDS (seconds per
# measurement of the local attach phase, default 2), BENCH_SKIP (comma-separated
# phases to leave out: compare, snapshots, table, local, transport, stream, durable). The work
# is done by compare.py; read its docstring for what is measured and how.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:-build}"

missing=()
for b in server/countersd client/counterctl tests/bench/table_bench \
         tests/bench/memcached_incr_bench tests/bench/fill_counters tests/bench/bare_grpc_server \
         tests/bench/local_bench tests/bench/fdatasync_bench; do
  [ -x "$build/$b" ] || missing+=("$build/$b")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "run.sh: not built: ${missing[*]}" >&2
  echo "run.sh: build them with: cmake --build $build --target countersd counterctl table_bench memcached_incr_bench fill_counters bare_grpc_server local_bench fdatasync_bench" >&2
  exit 2
fi
for t in redis-server redis-benchmark memcached python3; do
  if ! command -v "$t" >/dev/null; then
    echo "run.sh: $t is not installed; run deploy/install-deps.sh --bench" >&2
    exit 2
  fi
done

# compare.py stops everything it started on exit, SIGINT, SIGTERM or SIGHUP;
# `exec` hands it our signals directly.
exec python3 "$here/compare.py" "$build"
