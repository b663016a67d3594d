# shellcheck shell=bash
# What the parts of the container test share (sourced by tests/container/run.sh
# and by each part when it is run alone): the run's names and directories,
# the PASS/FAIL bookkeeping, the cleanup of everything a run creates, the
# podman flags, the prerequisites step and the summary. Nothing here runs
# when it is sourced; ct_run runs a test.
#
#   ct_run "PART..." "$@"           the whole run of a script called with
#                                   [BUILD_DIR]: bound it (ct_watchdog), set
#                                   up, check prerequisites, run each PART (a
#                                   function) in turn, print the summary;
#                                   returns 0 if no check failed
#
# Reporting: ok NAME, bad NAME [WHY], skip NAME [WHY] count one check each;
# fact TEXT is printed again in the summary; step TITLE starts a section.

# Re-executes the calling script under `timeout` (COUNTERSD_CT_TIMEOUT
# seconds, default 1800), once.
ct_watchdog() {
  if [ -z "${COUNTERSD_CT_WATCHDOG:-}" ]; then
    export COUNTERSD_CT_WATCHDOG=1
    exec timeout --kill-after=30 "${COUNTERSD_CT_TIMEOUT:-1800}" "$BASH" "$0" "$@"
  fi
}

# ---------------------------------------------------------------- reporting
passed=0 failed=0 skipped=0
summary=()
ok()   { passed=$((passed + 1));  summary+=("PASS  $1"); echo "PASS: $1"; }
bad()  { failed=$((failed + 1));  summary+=("FAIL  $1${2:+: $2}"); echo "FAIL: $1${2:+: $2}"; }
skip() { skipped=$((skipped + 1)); summary+=("SKIP  $1${2:+: $2}"); echo "SKIP: $1${2:+: $2}"; }
step() { echo; echo "=== $*"; }
facts=()
fact() { facts+=("$1"); echo "  $1"; }

# ------------------------------------------------------------------ cleanup
cleanup() {
  local rc=$?
  touch "$WORK/stop" 2>/dev/null
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  if command -v podman >/dev/null; then
    for c in $(podman ps -a -q --filter "label=$LABEL" --filter "name=^$TAG-" 2>/dev/null); do
      timeout 60 podman rm -f -t 0 "$c" >/dev/null 2>&1
    done
    for v in "$VOLUME" "${COMPOSE_PROJECT}_countersd-data"; do
      timeout 60 podman volume rm -f "$v" >/dev/null 2>&1
    done
    timeout 60 podman network rm -f "${COMPOSE_PROJECT}_default" >/dev/null 2>&1
    # rmi of one name of a multi-name image only removes that name
    timeout 60 podman rmi "localhost/${COMPOSE_PROJECT}_countersd:latest" >/dev/null 2>&1
  fi
  rm -rf "$WORK"
  exit "$rc"
}

# ------------------------------------------------------------ podman flags
cap_limit() {  # current soft limit of `ulimit -$1`, at most $2
  local v; v=$(ulimit "-$1")
  if [ "$v" = unlimited ] || [ "$v" -gt "$2" ]; then v=$2; fi
  echo "$v"
}

# ------------------------------------------------------------------ helpers
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ctl() { "$CTL" --addr="127.0.0.1:$PORT" --timeout=5s "$@"; }

# Sets the run's names, directories and podman flags (BUILD_DIR: $1, default
# build/ of the repo), and the cleanup on exit.
# shellcheck disable=SC2034  # the parts use what is set here
ct_setup() {
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  BUILD=${1:-$ROOT/build}
  case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
  CTL=$BUILD/client/counterctl
  DAEMON=$BUILD/server/countersd
  CACHE=${COUNTERSD_TEST_CACHE:-/var/cache/countersd-test}
  BASE_IMAGE=localhost/countersd-base:bookworm
  IMAGE=localhost/countersd:ci-test
  LABEL=countersd-container-test=1
  TAG=countersd-ct-$$
  VOLUME=$TAG-data
  COMPOSE_PROJECT=${TAG}-compose
  WORK=$(mktemp -d /tmp/countersd-ct.XXXXXX)
  bg_pids=()
  image_ok=false  # set by build_image (build_image.sh)
  trap cleanup EXIT
  trap 'echo "container test: interrupted or out of time" >&2; exit 124' INT TERM
  NOFILE=$(cap_limit n 65536)
  NPROC=$(cap_limit u 4096)
  PODMAN=(timeout 120 podman --runtime runc)
  # The image needs a token (deploy/countersd-entrypoint.sh): exported, so
  # that the host's counterctl and podman-compose see it, and passed to each
  # container, where counterctl sends it too.
  COUNTERS_TOKEN=countersd-container-test-$$
  export COUNTERS_TOKEN
  RUN_FLAGS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC"
             --label "$LABEL" --stop-timeout 30 -e COUNTERS_TOKEN)
}

prerequisites() {
  step "prerequisites"
  if "$ROOT/deploy/install-deps.sh" --container; then
    ok "prerequisites installed (deploy/install-deps.sh --container)"
  else
    bad "prerequisites installed (deploy/install-deps.sh --container)"
  fi
  for t in "$CTL" "$DAEMON"; do
    [ -x "$t" ] || bad "host binary $t exists" "build it first (make build, or pass the build dir)"
  done
  # Containers left by an earlier run that was killed before its cleanup.
  for c in $(podman ps -a -q --filter "label=$LABEL" 2>/dev/null); do
    timeout 60 podman rm -f -t 0 "$c" >/dev/null 2>&1
  done
}

# A scenario run alone (scenarios.sh, scenario_systemd.sh) uses the images an
# earlier run built.
reuse_image() {
  step "images from an earlier run"
  if podman image exists "$IMAGE" && podman image exists "$BASE_IMAGE"; then
    image_ok=true
    fact "images: $IMAGE and $BASE_IMAGE reused"
  else
    bad "images $IMAGE and $BASE_IMAGE exist" "build them first (tests/container/build_image.sh)"
  fi
}

report_summary() {
  echo
  echo "=== container test summary"
  facts+=("whole container test: ${SECONDS} s")
  for f in "${facts[@]}"; do echo "  $f"; done
  for s in "${summary[@]}"; do echo "$s"; done
  if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
  else
    echo "$passed passed, $failed failed"
  fi
  [ "$failed" -eq 0 ]
}

ct_main() {
  ct_setup "$1"
  shift
  echo "countersd container test: repo $ROOT, build $BUILD"
  echo "podman flags: --runtime runc, run: --ulimit nofile=$NOFILE:$NOFILE --ulimit nproc=$NPROC:$NPROC"
  prerequisites
  local part
  for part in "$@"; do "$part"; done
  report_summary
}

ct_run() {
  local parts=$1
  shift
  set -uo pipefail
  ct_watchdog "$@"
  # shellcheck disable=SC2086  # one word per part
  ct_main "${1:-}" $parts
}
