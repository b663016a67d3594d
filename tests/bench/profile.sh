#!/usr/bin/env bash
# Profiles a server under load and prints where the time goes: system calls
# and context switches per call (perf stat on syscall tracepoints), samples
# per thread and library, and the top symbols of the server and of the load
# generator (perf record, software cpu-clock event: this VM has no hardware
# counters).
#
#   tests/bench/profile.sh [BUILD_DIR] [WORKLOAD] [SECONDS]
#     WORKLOAD: unary64 (default; 64 increments in flight: countersd over 8
#               connections, Redis over 64), unary1, batch100 (16 batches of
#               100 in flight)
#   PROFILE_SERVER=countersd (default) | bare (tests/bench/bare_grpc_server)
#                 | redis (redis-server, driven by redis-benchmark)
#   PROFILE_CALLGRAPH=1   record call stacks too (--call-graph dwarf; large
#                         files) and print the inclusive (children) view
#   COUNTERSD_FLAGS="--handlers=1 ..."   extra daemon flags
#   COUNTERSD_BIN=path   another countersd binary (A/B of a patch built elsewhere)
#   BARE_FLAGS="--deadlock-detection=off"   extra bare_grpc_server flags
#
# perf.data and the logs stay in a temporary directory whose name is printed.
# Traffic goes to 127.0.0.1 only; everything started here is stopped on exit.
set -euo pipefail

build="${1:-build}"
workload="${2:-unary64}"
seconds="${3:-10}"
server="${PROFILE_SERVER:-countersd}"
command -v perf >/dev/null || {
  echo "profile.sh: perf is not installed (deploy/install-deps.sh --bench)" >&2
  exit 2
}

case "$workload" in
  unary64) grpc_load=(--rpc=increment --connections=8 --concurrency=64); redis_load=(-c 64 -P 1) ;;
  unary1) grpc_load=(--rpc=increment --connections=1 --concurrency=1); redis_load=(-c 1 -P 1) ;;
  batch100) grpc_load=(--rpc=batch --batch=100 --connections=8 --concurrency=16); redis_load=(-c 16 -P 100) ;;
  *) echo "profile.sh: unknown workload '$workload'" >&2; exit 2 ;;
esac

dir="$(mktemp -d /tmp/countersd-profile-XXXXXX)"
server_pid=""
client_pid=""
cleanup() {
  if [ -n "$client_pid" ]; then kill "$client_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case "$server" in
  bare)
    # shellcheck disable=SC2086
    "$build/tests/bench/bare_grpc_server" --listen=127.0.0.1:0 ${BARE_FLAGS:-} >"$dir/server.out" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do grep -q '^listening on' "$dir/server.out" && break; sleep 0.05; done
    addr="$(sed -n 's/^listening on //p' "$dir/server.out")"
    ;;
  redis)
    port="$(free_port)"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" \
      --logfile "$dir/redis.log" &
    server_pid=$!
    for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    addr="127.0.0.1:$port"
    ;;
  countersd)
    # shellcheck disable=SC2086
    "${COUNTERSD_BIN:-$build/server/countersd}" --listen=127.0.0.1:0 --data-dir="$dir/data" --log-format=json \
      ${COUNTERSD_FLAGS:-} 2>"$dir/countersd.log" &
    server_pid=$!
    for _ in $(seq 200); do grep -q '"msg":"ready"' "$dir/countersd.log" && break; sleep 0.05; done
    addr="$(grep '"msg":"ready"' "$dir/countersd.log" | sed 's/.*"listen":"\([^"]*\)".*/\1/')"
    ;;
  *) echo "profile.sh: PROFILE_SERVER must be countersd, bare or redis" >&2; exit 2 ;;
esac
[ -n "$addr" ] || { echo "profile.sh: the server did not start (see $dir)" >&2; exit 1; }
pids="$server_pid"
for c in $(cat "/proc/$server_pid/task/"*/children 2>/dev/null); do pids="$pids,$c"; done

# The load: long enough to cover the warm-up, perf stat and perf record.
total=$((2 * seconds + 4))
if [ "$server" = redis ]; then
  # Sized from a short calibration run so that it lasts about $total seconds.
  rps="$(redis-benchmark -h 127.0.0.1 -p "${addr##*:}" "${redis_load[@]}" -n 100000 -r 10000 --csv \
         INCRBY 'key:__rand_int__' 1 | tail -1 | cut -d'"' -f4)"
  n="$(python3 -c "print(int(float('$rps') * $total))")"
  redis-benchmark -h 127.0.0.1 -p "${addr##*:}" "${redis_load[@]}" -n "$n" -r 10000 --csv \
    INCRBY 'key:__rand_int__' 1 >"$dir/bench.out" 2>&1 &
else
  "$build/client/counterctl" --addr="$addr" --output=json --timeout=10s bench "${grpc_load[@]}" \
    --keys=10000 --key-prefix=key: --warmup=1s --duration="${total}s" >"$dir/bench.out" &
fi
client_pid=$!
sleep 2
echo "load average $(cut -d' ' -f1-3 /proc/loadavg); server pids $pids; client pid $client_pid" >&2

# 1. System calls and context switches of the server, per call.
events="context-switches,cpu-clock"
for s in sendmsg recvmsg write read writev readv epoll_wait futex; do
  events="$events,syscalls:sys_enter_$s"
done
perf stat -x, -e "$events" -p "$pids" -o "$dir/stat.csv" -- sleep "$seconds" 2>/dev/null
# 2. Samples.
graph=()
[ "${PROFILE_CALLGRAPH:-0}" = 1 ] && graph=(--call-graph dwarf,16384)
perf record -q -e cpu-clock -F 999 "${graph[@]}" -p "$pids,$client_pid" -o "$dir/perf.data" \
  -- sleep "$seconds" 2>"$dir/perf-record.err" || { cat "$dir/perf-record.err" >&2; exit 1; }
wait "$client_pid" || true
profiled_client="$client_pid"
client_pid=""

if [ "$server" = redis ]; then
  rate="$(tail -1 "$dir/bench.out" | cut -d'"' -f4)"
else
  rate="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['calls_per_second'])" "$dir/bench.out")"
fi
echo "== $workload against $server ${COUNTERSD_FLAGS:-}${BARE_FLAGS:-}: $rate calls/s"
echo "   driver output: $(tail -c 600 "$dir/bench.out")"
echo
echo "== Server, per call (perf stat over ${seconds}s at the driver's average rate) =="
python3 - "$dir/stat.csv" "$rate" "$seconds" <<'EOF'
import sys
path, rate, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
calls = rate * secs
for line in open(path):
    f = line.strip().split(",")
    if len(f) < 3 or not f[0].replace(".", "", 1).isdigit():
        continue
    value, event = float(f[0]), f[2]
    if event == "cpu-clock":  # msec
        print(f"   server CPU       {value / 1000 / secs:6.2f} cores busy, {value * 1000 / calls:8.1f} us per call")
    else:
        print(f"   {event.replace('syscalls:sys_enter_', ''):16s} {value / calls:8.2f} per call")
EOF
report() { perf report -i "$dir/perf.data" --no-children -g none --percent-limit "$1" --stdio "${@:2}" 2>/dev/null | grep -v '^#' | grep -v '^$' || true; }
echo
echo "== Samples by thread (server and driver) =="
report 0.5 --sort pid,comm
echo
echo "== By command and library =="
report 0.5 --sort comm,dso
echo
echo "== Top symbols of the server (% of server samples) =="
report 0.4 --pid "$pids" --percentage relative --sort dso,sym | cut -c1-160 | head -60
echo
echo "== Top symbols of the load generator (% of its samples) =="
report 0.8 --pid "$profiled_client" --percentage relative --sort dso,sym | cut -c1-160 | head -25
if [ "${PROFILE_CALLGRAPH:-0}" = 1 ]; then
  echo
  echo "== Server, inclusive time (children) of selected frames =="
  perf report -i "$dir/perf.data" --children --pid "$pids" --percentage relative --sort sym -g none \
    --percent-limit 1.5 --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-160 | head -70 || true
fi
echo
echo "(perf.data and logs: $dir)"
