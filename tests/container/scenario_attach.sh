#!/usr/bin/env bash
# Local attach across containers (issue 14), scenario 1f of the container
# test (sourced by scenarios.sh; run with it). Alone, on the images of an
# earlier run:
#   tests/container/scenario_attach.sh [BUILD_DIR]
# Container A runs the daemon on the scenario's named volume. Container B,
# the same image with `--entrypoint counterctl`, the same volume and its own
# pid namespace, runs `counterctl --attach=/var/lib/countersd ...`: B's
# increments go into A's table with no RPC, and A's daemon reads them back
# over gRPC (`podman exec A counterctl get`). Step by step, each a check:
#  1. The image has libcountersd_local.so (in ld.so's cache) and
#     countersd_local.h.
#  2. Five `inc` from five B containers (hardened: read-only, no
#     capabilities), each printing the running total; B's pid namespace is
#     not A's.
#  3. `batch` (one atomic IncrementBatch) and `batch --pipe -o json` from B's
#     stdin: their output, and A's daemon sees the exact values.
#  4. B as another uid (20000) is refused: PERMISSION_DENIED, exit 5, the
#     message saying who may attach.
#  5. A stopped: B's attach is UNAVAILABLE, exit 1, "no countersd owns this
#     data directory".
#  6. A again with --attach-group=countersd (gid 10001): B as uid 20000 with
#     --group-add 10001 attaches and increments, A sees it.
# Needs image_ok=true (build_image.sh); not the host's counterctl.

ATTACH_DIR=/var/lib/countersd

# Runs counterctl in a new container B on the volume: `attach_ctl [PODMAN
# FLAGS...] -- COUNTERCTL ARGS...` (-i among the flags: B reads this
# function's stdin). One-shot B containers run without the image's
# HEALTHCHECK (there is no daemon in them to check; and podman 4.3 without
# systemd as PID 1 says on stderr that it cannot set up its timer).
attach_ctl() {
  local flags=()
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  "${PODMAN[@]}" run --rm --no-healthcheck "${RUN_FLAGS[@]}" "${flags[@]}" \
    --read-only --cap-drop=ALL --security-opt=no-new-privileges \
    -v "$VOLUME:$ATTACH_DIR" --entrypoint counterctl "$IMAGE" "$@"
}

# Starts the daemon's container $1 on the volume, no port published, with
# countersd flags $2...; waits until it serves (60 s at most).
start_attach_daemon() {
  local name=$1 deadline=$((SECONDS + 60)); shift
  if ! "${PODMAN[@]}" run -d --name "$name" "${RUN_FLAGS[@]}" -v "$VOLUME:$ATTACH_DIR" \
         "$IMAGE" --handlers=1 "$@" >/dev/null 2>"$WORK/attach-run.err"; then
    cat "$WORK/attach-run.err" >&2
    return 1
  fi
  while [ $SECONDS -lt $deadline ]; do
    timeout 30 podman exec "$name" counterctl --timeout=2s health >/dev/null 2>&1 && return 0
    if [ "$(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then break; fi
    sleep 0.5
  done
  echo "container $name does not serve; its log:" >&2
  podman logs "$name" 2>&1 | tail -n 30 >&2
  return 1
}

# A's value of each key, over gRPC inside A: "k=v k2=v2".
values_in() {
  local name=$1; shift
  timeout 30 podman exec "$name" counterctl -o json get "$@" 2>&1 |
    python3 -c 'import json, sys
print(" ".join("%s=%s" % (c["key"], c["value"] if c["found"] else "missing")
               for c in json.load(sys.stdin)["counters"]))' 2>&1
}

scenario_attach() {
  $image_ok || return 0
  step "local attach across containers (counterctl --attach, volume $VOLUME)"
  podman volume exists "$VOLUME" || "${PODMAN[@]}" volume create --label "$LABEL" "$VOLUME" >/dev/null
  local A=$TAG-attach-a out want got i sum=0 ns_a ns_b
  # The keys start from nothing even on a volume an earlier scenario used.
  local run=at$$
  local k=$run.k b=$run.b p=$run.p g=$run.g

  # -- 1. the C ABI is in the image
  if out=$("${PODMAN[@]}" run --rm --no-healthcheck "${RUN_FLAGS[@]}" --entrypoint /bin/sh "$IMAGE" -c \
        'ldconfig -p | grep -q "libcountersd_local.so.0 " && test -s /usr/local/include/countersd_local.h' 2>&1); then
    ok "image has libcountersd_local.so (ld.so cache) and countersd_local.h"
  else
    bad "image has libcountersd_local.so (ld.so cache) and countersd_local.h" "$out"
  fi

  if ! start_attach_daemon "$A"; then
    bad "daemon container A starts on the volume and serves"
    return
  fi
  ok "daemon container A starts on volume $VOLUME and serves"

  # -- 2. increments from other containers, other pid namespaces
  local incs_ok=true
  for i in 1 2 3 4 5; do
    sum=$((sum + i))
    out=$(attach_ctl -- --attach=$ATTACH_DIR inc "$k" "$i" 2>"$WORK/attach.err")
    if [ "$out" != "$sum" ]; then
      incs_ok=false
      echo "  inc $k $i from B printed '$out' (want $sum): $(cat "$WORK/attach.err")"
    fi
  done
  got=$(values_in "$A" "$k")
  if $incs_ok && [ "$got" = "$k=15" ]; then
    ok "5 x counterctl --attach inc from container B (read-only, no capabilities): A's daemon has $got"
  else
    bad "5 x counterctl --attach inc from container B: A's daemon sees the exact value" "A has '$got', want $k=15"
  fi
  ns_a=$(timeout 30 podman exec "$A" readlink /proc/1/ns/pid 2>&1)
  ns_b=$("${PODMAN[@]}" run --rm --no-healthcheck "${RUN_FLAGS[@]}" --entrypoint readlink "$IMAGE" /proc/self/ns/pid 2>/dev/null)
  fact "pid namespaces: daemon container $ns_a, attaching container $ns_b"
  if [ -n "$ns_a" ] && [ -n "$ns_b" ] && [ "$ns_a" != "$ns_b" ]; then
    ok "the attaching container has its own pid namespace"
  else
    bad "the attaching container has its own pid namespace" "A: $ns_a, B: $ns_b"
  fi

  # -- 3. batch and batch --pipe through B's stdin
  out=$(printf '%s 100\n# comment\n%s 7\n%s -3\n' "$k" "$b" "$b" | attach_ctl -i -- --attach=$ATTACH_DIR batch 2>"$WORK/attach.err")
  want=$(printf '%s  115\n%s    7\n%s    4' "$k" "$b" "$b")
  got=$(values_in "$A" "$k" "$b")
  if [ "$out" = "$want" ] && [ "$got" = "$k=115 $b=4" ]; then
    ok "counterctl --attach batch from container B: one atomic batch, A's daemon has $got"
  else
    printf '  batch printed:\n%s\n  and on stderr: %s\n' "$out" "$(cat "$WORK/attach.err")"
    bad "counterctl --attach batch from container B" "A has '$got', want $k=115 $b=4"
  fi
  out=$(for i in $(seq 1 30); do echo "$p $i"; done | attach_ctl -i -- --attach=$ATTACH_DIR -o json batch --pipe --max-batch=8 2>"$WORK/attach.err")
  got=$(values_in "$A" "$p")
  if [ "$out" = '{"applied":30,"failed":0,"unknown":0,"failures":[],"stopped":null}' ] && [ "$got" = "$p=465" ]; then
    ok "counterctl --attach batch --pipe (30 lines, chunks of 8) from container B: A's daemon has $got"
  else
    bad "counterctl --attach batch --pipe from container B" "printed '$out' ($(cat "$WORK/attach.err")), A has '$got', want $p=465"
  fi

  # -- 4. another uid is refused
  out=$(attach_ctl --user 20000:20000 -- --attach=$ATTACH_DIR inc "$k" 2>&1)
  code=$?
  if [ "$code" = 5 ] && [[ "$out" == *"attaching needs the daemon's user or a member of its --attach-group"* ]]; then
    ok "container B as uid 20000 is refused: exit 5, PERMISSION_DENIED saying who may attach"
  else
    bad "container B as uid 20000 is refused with PERMISSION_DENIED" "exit $code: $out"
  fi

  # -- 5. no daemon: UNAVAILABLE
  timeout 90 podman stop -t 30 "$A" >/dev/null 2>&1
  out=$(attach_ctl -- --attach=$ATTACH_DIR inc "$k" 2>&1)
  code=$?
  echo "  with A stopped: $out"
  if [ "$code" = 1 ] && [[ "$out" == *"cannot attach to countersd in $ATTACH_DIR"*"no countersd owns this data directory"* ]]; then
    ok "with A stopped, counterctl --attach in container B is UNAVAILABLE (exit 1): no countersd owns the directory"
  else
    bad "with A stopped, counterctl --attach in container B is UNAVAILABLE" "exit $code: $out"
  fi
  timeout 60 podman rm -f -t 0 "$A" >/dev/null 2>&1

  # -- 6. --attach-group: another uid in the group may
  if start_attach_daemon "$A" --attach-group=countersd; then
    out=$(attach_ctl --user 20000:20000 --group-add 10001 -- --attach=$ATTACH_DIR inc "$g" 9 2>"$WORK/attach.err")
    got=$(values_in "$A" "$g" "$k")
    if [ "$out" = 9 ] && [ "$got" = "$g=9 $k=115" ]; then
      ok "daemon with --attach-group=countersd: container B as uid 20000 in group 10001 attaches (A has $got)"
    else
      bad "daemon with --attach-group=countersd: uid 20000 in the group attaches" "printed '$out' ($(cat "$WORK/attach.err")), A has '$got'"
    fi
    timeout 90 podman stop -t 30 "$A" >/dev/null 2>&1
  else
    bad "daemon container A restarts with --attach-group=countersd"
  fi
  timeout 60 podman rm -f -t 0 "$A" >/dev/null 2>&1
}

# Run alone: tests/container/scenario_attach.sh [BUILD_DIR]
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # shellcheck source=tests/container/lib.sh
  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
  ct_run "reuse_image scenario_attach" "$@"
fi
