#!/usr/bin/env bash
# The container scenarios, the last part of the container test (run by
# tests/container/run.sh after build_image.sh; see there for the whole):
#  1. Containers on one named volume, port published on 127.0.0.1:
#     a) increments through the port with the host's counterctl;
#     b) `podman kill` (SIGKILL) under load, a new container on the same
#        volume: every acknowledged increment is there;
#     c) `podman stop` (SIGTERM) under load: the final snapshot is logged,
#        exit status 0, and again every acknowledged increment is there;
#     d) the last container runs hardened (--read-only, --cap-drop=ALL,
#        no-new-privileges, as compose.yaml and k8s/ do): no process runs as
#        root, the map file is not world-readable, the image's HEALTHCHECK and
#        `podman exec ... counterctl` work.
#  1e. A container limited to one CPU (--cpus=1) and no --handlers starts
#     one handler: the default reads the container's cgroup CPU quota.
#  1f. Local attach across containers (scenario_attach.sh, which lists its
#     steps): a second container on the volume, in its own pid namespace,
#     increments with `counterctl --attach` and the first one's daemon
#     sees the exact values; with the daemon stopped it is UNAVAILABLE;
#     another uid only through --attach-group.
#  2. deploy/compose.yaml itself, with podman-compose: up, healthy, increments
#     through the port, stop with exit status 0 and the final snapshot, down
#     and up again on the same named volume with the counters kept.
#  3. deploy/countersd.service under a real systemd (scenario_systemd.sh,
#     which lists its steps): readiness, StatusText, the watchdog, reload,
#     the handlers from COUNTERSD_HANDLERS and from CPUQuota=, a dynamic
#     non-root user, SIGKILL and `systemctl stop`.
# Each needs image_ok=true (build_image.sh); 1 (but 1f) and 2 also the
# host's counterctl.

# shellcheck source=tests/container/scenario_systemd.sh
source "$(dirname "${BASH_SOURCE[0]}")/scenario_systemd.sh"
# shellcheck source=tests/container/scenario_attach.sh
source "$(dirname "${BASH_SOURCE[0]}")/scenario_attach.sh"

scenarios() {
  scenario_containers
  scenario_cpu_limit
  scenario_attach
  scenario_compose
  scenario_systemd
}

# Starts container $1 on the volume, with extra podman flags from the array
# named by $2 (may be empty), passing the remaining args to countersd.
start_container() {
  local name=$1 extra_name=$2; shift 2
  local -n extra=$extra_name
  # podman 4.3 logs that it cannot set up healthcheck timers without systemd
  # as PID 1; `podman healthcheck run` still works. Show its stderr only on
  # failure.
  if ! "${PODMAN[@]}" run -d --name "$name" "${RUN_FLAGS[@]}" "${extra[@]}" \
         -v "$VOLUME:/var/lib/countersd" -p "127.0.0.1:$PORT:50051" \
         "$IMAGE" "$@" >/dev/null 2>"$WORK/run.err"; then
    cat "$WORK/run.err" >&2
    return 1
  fi
}

# Waits until counterctl health answers through the port (60 s at most).
wait_healthy() {
  local name=$1 deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    if ctl health >/dev/null 2>&1; then return 0; fi
    if [ "$(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then
      echo "container $name is not running; its log:" >&2
      podman logs "$name" 2>&1 | tail -n 30 >&2
      return 1
    fi
    sleep 0.5
  done
  echo "container $name: not healthy after 60 s; its log:" >&2
  podman logs "$name" 2>&1 | tail -n 30 >&2
  return 1
}

# Load: worker N increments key ct.wN by 1..5 in turn, one call at a time,
# and appends each acknowledged delta to $WORK/acked.N. It stops at its first
# failed call, recording that call's delta in $WORK/failed.N: that call may or
# may not have been applied, so a key ends between base + acked and
# base + acked + failed, where base ($WORK/base.N) is its value before the load.
WORKERS=4
start_load() {
  rm -f "$WORK"/acked.* "$WORK"/failed.* "$WORK"/base.* "$WORK/stop"
  local w v
  for w in $(seq 1 $WORKERS); do
    v=$(ctl get "ct.w$w" 2>/dev/null)
    case $? in 0) ;; 3) v=0 ;; *) echo "get ct.w$w failed before the load" >&2; v=-1 ;; esac
    echo "$v" >"$WORK/base.$w"
  done
  for w in $(seq 1 $WORKERS); do
    (
      : >"$WORK/acked.$w"
      for ((i = 0; i < 100000; i++)); do
        [ -e "$WORK/stop" ] && exit 0
        d=$((i % 5 + 1))
        if ctl inc "ct.w$w" "$d" >/dev/null 2>>"$WORK/load.err"; then
          echo "$d" >>"$WORK/acked.$w"
        else
          echo "$d" >"$WORK/failed.$w"
          exit 0
        fi
      done
    ) &
    bg_pids+=($!)
  done
}
acked_calls() { cat "$WORK"/acked.* 2>/dev/null | wc -l; }
wait_for_acks() {  # until at least $1 acknowledged calls in total (120 s at most)
  local deadline=$((SECONDS + 120))
  while [ "$(acked_calls)" -lt "$1" ]; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}
wait_load_done() {  # workers stop at their first failure; bound it anyway
  local deadline=$((SECONDS + 60)) p
  for p in "${bg_pids[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  done
  touch "$WORK/stop"
  wait 2>/dev/null
  bg_pids=()
}
sum_file() { awk '{ s += $1 } END { print s + 0 }' "$1" 2>/dev/null || echo 0; }

# Checks every worker key against its acknowledged total, through the port.
# $1: label for the report. Prints one line per key.
check_acked() {
  local w v acked maybe problems=0
  for w in $(seq 1 $WORKERS); do
    acked=$(( $(cat "$WORK/base.$w") + $(sum_file "$WORK/acked.$w") ))
    maybe=$(sum_file "$WORK/failed.$w")
    v=$(ctl get "ct.w$w" 2>&1)
    case $? in
      0) ;;
      3) v=0 ;;  # not found: never incremented
      *) v="error: $v" ;;
    esac
    echo "  ct.w$w: before load + acked = $acked (+$maybe unacknowledged), server has $v"
    if ! [[ "$v" =~ ^[0-9]+$ ]] || [ "$v" -lt "$acked" ] || [ "$v" -gt $((acked + maybe)) ]; then
      problems=$((problems + 1))
    fi
  done
  return "$problems"
}

scenario_containers() {
  if $image_ok && [ -x "$CTL" ]; then
    PORT=$(free_port)
    step "containers on volume $VOLUME, port 127.0.0.1:$PORT"
    "${PODMAN[@]}" volume create --label "$LABEL" "$VOLUME" >/dev/null
    SERVER_FLAGS=(--capacity=65536 --handlers=2 --snapshot-interval=1s)
    # shellcheck disable=SC2034  # passed by name to start_container
    none=()

    # -- a) increments through the published port
    A=$TAG-a
    if start_container "$A" none "${SERVER_FLAGS[@]}" && wait_healthy "$A"; then
      ok "container starts on a named volume and answers health on 127.0.0.1:$PORT"
      expect=0 okcalls=0
      for i in $(seq 1 50); do
        if ctl inc ct.base "$i" >/dev/null; then expect=$((expect + i)); okcalls=$((okcalls + 1)); fi
      done
      got=$(ctl get ct.base 2>&1)
      if [ "$okcalls" -eq 50 ] && [ "$got" = "$expect" ]; then
        ok "50 increments through the port with the host's counterctl (ct.base = $got)"
      else
        bad "50 increments through the port with the host's counterctl" "$okcalls acked, expected $expect, got $got"
      fi

      # -- b) SIGKILL under load, restart on the same volume
      start_load
      if wait_for_acks 200; then
        "${PODMAN[@]}" kill -s KILL "$A" >/dev/null      # SIGKILL: no drain, no final snapshot
        wait_load_done
        code=$(podman inspect -f '{{.State.ExitCode}}' "$A")
        fact "after podman kill: $(acked_calls) acknowledged increments, exit status $code"
        B=$TAG-b
        if start_container "$B" none "${SERVER_FLAGS[@]}" && wait_healthy "$B"; then
          podman logs "$B" 2>&1 | grep -i -E 'recover|trust|snapshot|restor|boot' | head -n 5 | sed 's/^/  log: /'
          base=$(ctl get ct.base 2>&1)
          if check_acked && [ "$base" = "$expect" ]; then
            ok "podman kill (SIGKILL) + new container on the same volume: every acknowledged increment is there"
          else
            bad "podman kill (SIGKILL) + new container on the same volume: every acknowledged increment is there" "ct.base=$base (want $expect)"
          fi

          # -- c) SIGTERM under load
          start_load
          if wait_for_acks 200; then
            t0=$SECONDS
            timeout 90 podman stop -t 30 "$B" >/dev/null 2>&1
            stop_secs=$((SECONDS - t0))
            wait_load_done
            code=$(podman inspect -f '{{.State.ExitCode}}' "$B")
            podman logs "$B" >"$WORK/b.log" 2>&1
            final=$(grep -i 'final snapshot' "$WORK/b.log" | tail -n 1)
            fact "podman stop under load: ${stop_secs} s, exit status $code, $(acked_calls) acknowledged increments"
            echo "  log: $final"
            if [ "$code" = 0 ] && grep -qi 'final snapshot written' "$WORK/b.log"; then
              ok "podman stop (SIGTERM) under load: final snapshot logged, exit status 0"
            else
              tail -n 20 "$WORK/b.log"
              bad "podman stop (SIGTERM) under load: final snapshot logged, exit status 0" "exit $code"
            fi
            [ -n "$(podman volume inspect -f '{{.Mountpoint}}' "$VOLUME")" ] &&
              ls -l "$(podman volume inspect -f '{{.Mountpoint}}' "$VOLUME")" | sed 's/^/  volume: /'

            # -- d) hardened container: acked increments, identity, file modes
            C=$TAG-c
            # shellcheck disable=SC2034  # passed by name to start_container
            hardened=(--read-only --tmpfs /tmp --cap-drop=ALL --security-opt=no-new-privileges)
            if start_container "$C" hardened "${SERVER_FLAGS[@]}" && wait_healthy "$C"; then
              podman logs "$C" 2>&1 | grep -i -E 'recover|trust|snapshot|restor|clean' | head -n 5 | sed 's/^/  log: /'
              if check_acked && [ "$(ctl get ct.base 2>&1)" = "$expect" ]; then
                ok "after SIGTERM, a new read-only, cap-less container has every acknowledged increment"
              else
                bad "after SIGTERM, a new read-only, cap-less container has every acknowledged increment"
              fi
              users=$(timeout 30 podman top "$C" user huser pid args 2>&1)
              echo "$users" | sed 's/^/  top: /'
              uid=$(timeout 30 podman exec "$C" id -u 2>&1)
              if [ "$uid" = 10001 ] && [ "$(echo "$users" | tail -n +2 | awk '$1 == "root" || $2 == "root" || $1 == "0"' | wc -l)" -eq 0 ] &&
                 [ "$(echo "$users" | tail -n +2 | wc -l)" -ge 3 ]; then
                ok "no process in the container runs as root (uid $uid)"
              else
                bad "no process in the container runs as root" "id -u: $uid"
              fi
              modes=$(timeout 30 podman exec "$C" stat -c '%a %u:%g %n' /var/lib/countersd /var/lib/countersd/counters.map 2>&1)
              echo "$modes" | sed 's/^/  stat: /'
              map_mode=$(echo "$modes" | awk '$3 ~ /counters\.map$/ { print $1 }')
              dir_mode=$(echo "$modes" | awk '$3 == "/var/lib/countersd" { print $1 }')
              if [ -n "$map_mode" ] && [ $((8#$map_mode & 8#007)) -eq 0 ] && [ "$dir_mode" = 700 ]; then
                ok "map file is not world-readable ($map_mode), data dir is $dir_mode"
              else
                bad "map file is not world-readable, data dir 700" "$modes"
              fi
              if hc=$(timeout 60 podman healthcheck run "$C" 2>&1); then
                ok "the image's HEALTHCHECK (counterctl health) passes: ${hc:-healthy}"
              else
                bad "the image's HEALTHCHECK (counterctl health) passes" "$hc"
              fi
              inner=$(timeout 30 podman exec "$C" counterctl get ct.base 2>&1)
              if [ "$inner" = "$expect" ]; then
                ok "podman exec ... counterctl get works inside the container"
              else
                bad "podman exec ... counterctl get works inside the container" "$inner"
              fi
              timeout 90 podman stop -t 30 "$C" >/dev/null 2>&1
              code=$(podman inspect -f '{{.State.ExitCode}}' "$C")
              [ "$code" = 0 ] && ok "idle hardened container stops with exit status 0" ||
                bad "idle hardened container stops with exit status 0" "exit $code"
            else
              bad "hardened container (--read-only, --cap-drop=ALL) starts on the volume"
            fi
          else
            bad "load against the second container" "fewer than 200 acknowledged increments in 120 s"
            wait_load_done
          fi
        else
          bad "new container starts on the volume after podman kill"
        fi
      else
        bad "load against the first container" "fewer than 200 acknowledged increments in 120 s"
        wait_load_done
      fi
      [ -s "$WORK/load.err" ] && sort "$WORK/load.err" | uniq -c | sort -rn | head -n 5 | sed 's/^/  load errors: /'
    else
      bad "container starts on a named volume and answers health on 127.0.0.1:$PORT"
    fi
  else
    bad "container tests" "no image or no host counterctl"
  fi
}

# The default --handlers under a CPU limit, as Kubernetes and compose users
# set one (on the scenario's volume, after scenario_containers).
scenario_cpu_limit() {
  if ! $image_ok || ! [ -x "$CTL" ]; then return 0; fi
  step "--handlers from the container's CPU limit"
  if [ "$(nproc)" -lt 2 ]; then
    skip "--cpus=1 -> one handler" "this host has one CPU: the check could not fail"
    return
  fi
  local name=$TAG-cpu n
  PORT=$(free_port)
  # shellcheck disable=SC2034  # passed by name to start_container
  one_cpu=(--cpus=1)
  if start_container "$name" one_cpu && wait_healthy "$name"; then
    n=$(ctl --output=json stats 2>/dev/null |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["handlers"]))' 2>/dev/null)
    podman logs "$name" 2>&1 | grep 'starting listen=' | head -n 1 | sed 's/^/  log: /'
    if [ "$n" = 1 ]; then
      ok "--cpus=1, no --handlers: one handler (GetStats), on a $(nproc)-CPU host"
    else
      bad "--cpus=1, no --handlers: one handler" "GetStats: $n handlers"
    fi
  else
    bad "a container with --cpus=1 starts"
  fi
  timeout 90 podman stop -t 30 "$name" >/dev/null 2>&1
  timeout 60 podman rm -f -t 0 "$name" >/dev/null 2>&1
}

# ====================================================== compose.yaml, run
# The compose file as a user runs it, with podman-compose (Debian's 1.0.3)
# standing in for `docker compose`. podman-compose 1.0.3 ignores
# stop_grace_period, so the stop gets its timeout explicitly.
scenario_compose() {
  if $image_ok && [ -x "$CTL" ]; then
    step "deploy/compose.yaml with podman-compose"
    if command -v podman-compose >/dev/null; then
      export COUNTERSD_PORT COUNTERSD_METRICS_PORT
      COUNTERSD_PORT=$(free_port)
      COUNTERSD_METRICS_PORT=$(free_port)
      PORT=$COUNTERSD_PORT
      PC=(timeout 600 podman-compose -p "$COMPOSE_PROJECT" -f "$ROOT/deploy/compose.yaml"
          --podman-args="--runtime runc"
          --podman-run-args="--ulimit nofile=$NOFILE:$NOFILE --ulimit nproc=$NPROC:$NPROC --label $LABEL"
          --podman-build-args="--format docker --build-arg BASE_IMAGE=$BASE_IMAGE")
      CC=${COMPOSE_PROJECT}_countersd_1
      if "${PC[@]}" up -d >"$WORK/compose-up.log" 2>&1 && wait_healthy "$CC"; then
        ok "podman-compose up: healthy on 127.0.0.1:$PORT"
        n=0
        for i in $(seq 1 20); do ctl inc compose.k >/dev/null && n=$((n + 1)); done
        inner=$(timeout 30 podman exec "$CC" counterctl get compose.k 2>&1)
        hc=$(timeout 60 podman healthcheck run "$CC" 2>&1) && hc_ok=true || hc_ok=false
        if [ "$n" = 20 ] && [ "$inner" = 20 ] && $hc_ok; then
          ok "compose: 20 increments through the port, read back by exec counterctl, healthcheck ${hc:-healthy}"
        else
          bad "compose: increments through the port, exec counterctl, healthcheck" "acked $n, exec got '$inner', healthcheck '$hc'"
        fi
        compose_metrics
        "${PC[@]}" stop -t 30 >"$WORK/compose-stop.log" 2>&1
        code=$(podman inspect -f '{{.State.ExitCode}}' "$CC" 2>&1)
        podman logs "$CC" >"$WORK/compose-ctr.log" 2>&1
        if [ "$code" = 0 ] && grep -qi 'final snapshot written' "$WORK/compose-ctr.log"; then
          ok "compose: stop writes the final snapshot, exit status 0"
        else
          tail -n 10 "$WORK/compose-ctr.log"
          bad "compose: stop writes the final snapshot, exit status 0" "exit $code"
        fi
        # The counters outlive the container: up again on the same volume.
        "${PC[@]}" down -t 30 >>"$WORK/compose-stop.log" 2>&1
        if "${PC[@]}" up -d >>"$WORK/compose-up.log" 2>&1 && wait_healthy "$CC" &&
           [ "$(ctl get compose.k 2>&1)" = 20 ]; then
          ok "compose: down + up keeps the counters on the named volume"
        else
          bad "compose: down + up keeps the counters on the named volume"
        fi
        "${PC[@]}" down -v -t 30 >>"$WORK/compose-stop.log" 2>&1
      else
        grep -v -e '^\[' -e '^STEP' -e '^-->' "$WORK/compose-up.log" | tail -n 30
        bad "podman-compose up: healthy on 127.0.0.1:$PORT"
      fi
    else
      bad "podman-compose up" "podman-compose not installed (deploy/install-deps.sh --container installs it)"
    fi
  fi
}

# The metrics port: published on loopback only, and GET /metrics through it
# passes `promtool check metrics`.
compose_metrics() {
  local published body
  published=$(timeout 30 podman port "$CC" 50052/tcp 2>&1)
  if [ "$published" = "127.0.0.1:$COUNTERSD_METRICS_PORT" ]; then
    ok "compose: metrics port 50052 published on 127.0.0.1:$COUNTERSD_METRICS_PORT only"
  else
    bad "compose: metrics port 50052 published on loopback only" "podman port: $published"
  fi
  body=$(python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode(), end="")' \
         "http://127.0.0.1:$COUNTERSD_METRICS_PORT/metrics" 2>&1)
  if grep -q '^countersd_requests_total{' <<<"$body" && promtool check metrics <<<"$body"; then
    ok "compose: GET /metrics on 127.0.0.1:$COUNTERSD_METRICS_PORT: countersd_requests_total, promtool check metrics passes"
  else
    echo "$body" | head -n 20
    bad "compose: GET /metrics through the published port, promtool check metrics"
  fi
}

# Run alone: tests/container/scenarios.sh [BUILD_DIR]
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # shellcheck source=tests/container/lib.sh
  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
  ct_run "reuse_image scenarios" "$@"
fi
