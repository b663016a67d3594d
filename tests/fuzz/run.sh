#!/usr/bin/env bash
# Runs every fuzz target of a -DCOUNTERSD_FUZZ=ON build for a bounded time
# (libFuzzer, ASan + UBSan), starting from its committed corpus, and prints
# each target's executions per second and coverage. Fails if any target
# finds a crash, leak or sanitizer report: the input is kept under
# $OUT/<target>/ and the message says how to make it a regression test.
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]}
seconds=${2:-60}
out=${FUZZ_OUT:-$build/fuzz-out}
list=$build/tests/fuzz/targets.txt
[ -r "$list" ] || { echo "fuzz: $list is missing (configure $build with -DCOUNTERSD_FUZZ=ON)" >&2; exit 2; }
mapfile -t targets <"$list"

mkdir -p "$out"
failed=()
printf '%-16s %10s %12s %8s %8s %s\n' target seconds execs exec/s cov result
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/${t}_fuzz
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (build the ${t}_fuzz target)" >&2; exit 2; }
  work=$out/$t
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  log=$work/fuzz.log
  # New inputs go to the scratch corpus (first directory); the committed
  # corpus is only read.
  set +e
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
  result=ok
  if [ "$rc" -ne 0 ] || ls "$work/artifacts"/* >/dev/null 2>&1; then
    result=FAILED
    failed+=("$t")
  fi
  printf '%-16s %10s %12s %8s %8s %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$result"
done

if [ ${#failed[@]} -gt 0 ]; then
  for t in "${failed[@]}"; do
    echo
    echo "fuzz: $t failed; the end of its log ($out/$t/fuzz.log):"
    tail -n 40 "$out/$t/fuzz.log"
    echo "fuzz: inputs that failed (copy each into tests/fuzz/corpus/$t/ as a regression test, then fix):"
    ls -1 "$out/$t/artifacts/" 2>/dev/null | sed "s|^|  $out/$t/artifacts/|"
  done
  exit 1
fi
