#!/usr/bin/env bash
# deploy/countersd.service under a real systemd, scenario 3 of the container
# test (sourced by scenarios.sh; run with it). systemd is PID 1 of a
# privileged podman container (image from systemd.Containerfile): the unit's
# sandboxing (mount namespaces for ProtectSystem=, PrivateTmp=, ...) needs
# CAP_SYS_ADMIN. Alone, on the images of an earlier run:
#   tests/container/scenario_systemd.sh [BUILD_DIR]
# Step by step, each a check:
#  1. The unit starts at boot with all its hardening and serves.
#  2. Readiness: after `systemctl stop`, `systemctl start` returns only once
#     the daemon serves: one health check right after it succeeds, with no
#     retry, and the unit became active (ActiveEnterTimestamp) no earlier
#     than the time the daemon's `ready` line carries (the daemon's own
#     stamp, taken before READY=1 is sent: journald's stamps of a stdout
#     line and PID 1's of READY=1 race; the wall clock does not step during
#     the test). StatusText is
#     the supervisor's "serving on ...: N of N handlers ready", WatchdogUSec
#     the unit's 30s, and N the handlers GetStats reports.
#  3. Every countersd process runs as the dynamic non-root user; the map file
#     is 0600.
#  4. SIGKILL of the supervisor: Restart=on-failure, the counters kept.
#  5. `systemctl reload` (with an auth file, the only thing SIGHUP re-reads):
#     RELOADING=1 then READY=1: it returns 0, the unit is active again and
#     StatusText says it reloaded.
#  6. A drop-in Environment=COUNTERSD_HANDLERS=1: one handler (GetStats).
#  7. A drop-in CPUQuota=100% and no COUNTERSD_HANDLERS: one handler. Only
#     where it can fail: the container has more than one CPU, and systemd in
#     it has a cpu controller to put the quota in (on a cgroup v1 host podman
#     delegates none: skipped, saying so).
#  8. A drop-in WatchdogSec=2s and a SIGSTOPped supervisor: systemd logs the
#     watchdog timeout, kills it (SIGABRT, whose default action ends a
#     stopped process too) and restarts it: NRestarts grows, a new MainPID
#     serves, the counters are kept.
#  9. Drop-ins removed: `systemctl stop` gives the final snapshot and exit
#     status 0, the counters of step 4 still there.

scenario_systemd() {
  SD_IMAGE=localhost/countersd-systemd:ci-test
  $image_ok || return 0
  step "deploy/countersd.service under systemd"
  mkdir -p "$WORK/sdctx"
  cp "$ROOT/deploy/countersd.service" "$ROOT/tests/container/systemd.Containerfile" "$WORK/sdctx/"
  S=$TAG-systemd
  if timeout 900 podman build --runtime runc --build-arg "APP_IMAGE=$IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
       -f "$WORK/sdctx/systemd.Containerfile" -t "$SD_IMAGE" "$WORK/sdctx" >"$WORK/sd-build.log" 2>&1 &&
     "${PODMAN[@]}" run -d --name "$S" "${RUN_FLAGS[@]}" --privileged --systemd=always "$SD_IMAGE" \
       >/dev/null 2>"$WORK/run.err" &&
     sd_wait_serving; then
    ok "countersd.service starts under systemd with its hardening (DynamicUser, ProtectSystem=strict, ...)"
    sd_readiness
    sd_identity_and_sigkill
    sd_reload
    sd_handlers_from_environment
    sd_handlers_from_cpu_quota
    sd_watchdog
    sd_final_stop
  else
    tail -n 20 "$WORK/sd-build.log"; cat "$WORK/run.err" 2>/dev/null
    bad "countersd.service starts under systemd with its hardening"
  fi
  timeout 60 podman rm -f -t 0 "$S" >/dev/null 2>&1
}

sdx() { timeout 60 podman exec "$S" "$@"; }
sd_show() { sdx systemctl show -p "$1" --value countersd 2>/dev/null; }
sd_health() { sdx counterctl --timeout=2s health >/dev/null 2>&1; }
sd_wait_serving() {  # active, and counterctl health answers (60 s at most)
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    if [ "$(sdx systemctl is-active countersd 2>/dev/null)" = active ] && sd_health; then return 0; fi
    sleep 0.5
  done
  sdx systemctl status countersd --no-pager 2>&1 | tail -n 15
  return 1
}
# How many handlers GetStats reports.
sd_handlers() {
  sdx counterctl --output=json stats 2>/dev/null |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["handlers"]))' 2>/dev/null
}
# Replaces the drop-ins with the files named (each NAME=CONTENT), restarts.
sd_dropins() {
  local d=/etc/systemd/system/countersd.service.d spec
  sdx sh -c "rm -rf $d && mkdir -p $d" || return 1
  for spec in "$@"; do
    printf '[Service]\n%s\n' "${spec#*=}" | podman exec -i "$S" sh -c "cat >$d/${spec%%=*}.conf" || return 1
  done
  sdx systemctl daemon-reload && sdx timeout 60 systemctl restart countersd && sd_wait_serving
}
# Whether the journal since the cursor $2 has a message matching $1.
sd_journal_has() {
  sdx journalctl -u countersd --no-pager -o cat --after-cursor="$2" 2>/dev/null | grep -q -- "$1"
}
sd_cursor() { sdx journalctl -n 1 -o cat --show-cursor --no-pager 2>/dev/null | sed -n 's/^-- cursor: //p'; }

sd_readiness() {
  local cursor started_ok=false ready active order status wd n
  sdx timeout 45 systemctl stop countersd >/dev/null 2>&1
  cursor=$(sd_cursor)
  # One health check right after start returns, no retry.
  if sdx timeout 90 systemctl start countersd && sd_health; then started_ok=true; fi
  ready=$(sdx journalctl -u countersd --no-pager -o cat --after-cursor="$cursor" 2>/dev/null |
          grep ' ready listen=' | tail -n 1 | cut -d' ' -f1)
  active=$(sdx systemctl show -p ActiveEnterTimestamp --value --timestamp=us+utc countersd 2>/dev/null)
  order=$(python3 -c 'import sys; from datetime import datetime as d
r = d.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%S.%fZ")
a = d.strptime(" ".join(sys.argv[2].split()[1:3]), "%Y-%m-%d %H:%M:%S.%f")
print("after" if a >= r else "before")' "$ready" "$active" 2>/dev/null)
  echo "  daemon's ready line at ${ready:-?}, unit active at ${active:-?}: $order"
  if $started_ok && [ "$order" = after ]; then
    ok "unit: systemctl start returns once the daemon serves (health at once, active after the ready line)"
  else
    bad "unit: systemctl start returns once the daemon serves" "health at once: $started_ok, ready $ready, active $active"
  fi
  status=$(sd_show StatusText) wd=$(sd_show WatchdogUSec) n=$(sd_handlers)
  SD_DEFAULT_HANDLERS=$n
  echo "  StatusText: $status; WatchdogUSec: $wd; handlers (GetStats): $n"
  if [[ "$status" =~ ^serving\ on\ .*:\ ([0-9]+)\ of\ ([0-9]+)\ handlers\ ready$ ]] &&
     [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] && [ "${BASH_REMATCH[1]}" = "$n" ] && [ "$wd" = 30s ]; then
    ok "unit: StatusText 'serving on ...: $n of $n handlers ready', WatchdogUSec=30s"
  else
    bad "unit: StatusText 'serving ... N of N handlers ready' and WatchdogUSec=30s" "'$status', '$wd', $n handlers"
  fi
}

sd_identity_and_sigkill() {
  local n=0 pid uids modes deadline
  for _ in $(seq 1 10); do sdx counterctl inc sd.k 7 >/dev/null && n=$((n + 1)); done
  pid=$(sd_show MainPID)
  # The real uid of every process whose command is the daemon (no ps here).
  uids=$(sdx sh -c 'for p in /proc/[0-9]*; do
           cmd=$(tr "\0" " " <"$p/cmdline" 2>/dev/null)
           case "$cmd" in /usr/local/bin/countersd*)
             awk "/^Uid:/ { printf \"%s \", \$2 }" "$p/status" ;;
           esac
         done')
  modes=$(sdx stat -c '%a %n' /var/lib/private/countersd /var/lib/private/countersd/counters.map 2>&1)
  echo "  main pid $pid; uids of countersd processes: $uids"
  echo "$modes" | sed 's/^/  stat: /'
  # shellcheck disable=SC2086  # one word per uid
  if [ "$(echo $uids | wc -w)" -ge 3 ] && ! [[ " $uids" == *" 0 "* ]] &&
     [ "$(echo "$modes" | awk '/counters\.map$/ { print $1 }')" = 600 ]; then
    ok "unit: every countersd process runs as a dynamic non-root user; map file 600"
  else
    bad "unit: every countersd process runs as a dynamic non-root user; map file 600" "uids '$uids'"
  fi
  # SIGKILL the supervisor: Restart=on-failure brings it back, counters kept.
  sdx systemctl kill -s KILL --kill-whom=main countersd >/dev/null 2>&1
  deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ] && { [ "$(sd_show MainPID)" = "$pid" ] || [ "$(sd_show MainPID)" = 0 ]; }; do
    sleep 0.5
  done
  if [ "$n" = 10 ] && sd_wait_serving && [ "$(sdx counterctl get sd.k 2>&1)" = 70 ]; then
    ok "unit: SIGKILL of the supervisor -> Restart=on-failure, all 10 acknowledged increments kept"
  else
    bad "unit: SIGKILL of the supervisor -> Restart=on-failure, acknowledged increments kept" "acked $n, now $(sdx counterctl get sd.k 2>&1)"
  fi
}

# SIGHUP re-reads --auth-file, and only with one does the supervisor send
# RELOADING=1. The file admits the run's COUNTERS_TOKEN, which counterctl
# in the container sends (RUN_FLAGS), as the image's entrypoint does.
sd_reload() {
  local status state rc
  sdx sh -c 'mkdir -p /etc/countersd && counterctl token hash --role=admin >/etc/countersd/auth &&
             chmod 0644 /etc/countersd/auth'
  if ! sd_dropins "auth=Environment=COUNTERSD_AUTH_FILE=/etc/countersd/auth"; then
    bad "unit: restarts with a drop-in auth file"
    return
  fi
  sdx timeout 60 systemctl reload countersd
  rc=$?
  state=$(sdx systemctl is-active countersd 2>&1) status=$(sd_show StatusText)
  echo "  after reload: exit $rc, $state, StatusText: $status"
  if [ "$rc" = 0 ] && [ "$state" = active ] && [ "$status" = "serving (reloaded --auth-file)" ] && sd_health &&
     [ "$(sdx counterctl get sd.k 2>&1)" = 70 ]; then
    ok "unit: systemctl reload (RELOADING=1, then READY=1): active again, StatusText says reloaded"
  else
    bad "unit: systemctl reload: active again, StatusText says reloaded" "exit $rc, $state, '$status', get: $(sdx counterctl get sd.k 2>&1)"
  fi
}

sd_handlers_from_environment() {
  local n
  if sd_dropins "handlers=Environment=COUNTERSD_HANDLERS=1"; then n=$(sd_handlers); else n="no start"; fi
  if [ "$n" = 1 ] && [ "$(sd_show StatusText)" = "serving on 127.0.0.1:50051,unix:/run/countersd/countersd.sock: 1 of 1 handlers ready" ]; then
    ok "unit: drop-in Environment=COUNTERSD_HANDLERS=1 -> one handler (GetStats and StatusText)"
  else
    bad "unit: drop-in Environment=COUNTERSD_HANDLERS=1 -> one handler" "GetStats: $n, StatusText: $(sd_show StatusText)"
  fi
}

# The cgroup the service's CPU quota would be in, as /proc/PID/cgroup says:
# cgroup v2's (0::) with a cpu controller, or v1's cpu hierarchy. Empty if it
# is not the service's own: systemd has no cpu controller to set it in.
sd_cpu_cgroup() {
  sdx sh -c 'pid=$(systemctl show -p MainPID --value countersd)
    if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
      sed -n "s/^0:://p" /proc/$pid/cgroup
    else
      awk -F: "\$2 ~ /(^|,)cpu(,|$)/ { print \$3 }" /proc/$pid/cgroup
    fi' 2>/dev/null | grep '/countersd\.service$'
}

sd_handlers_from_cpu_quota() {
  local n
  if [ "${SD_DEFAULT_HANDLERS:-0}" -lt 2 ]; then
    skip "unit: CPUQuota=100% -> one handler" "the container has one CPU: the check could not fail"
    return
  fi
  if sd_dropins "quota=CPUQuota=100%"; then n=$(sd_handlers); else n="no start"; fi
  if [ -z "$(sd_cpu_cgroup)" ]; then
    skip "unit: CPUQuota=100% -> one handler" \
      "systemd in the container has no cpu controller for the quota (cgroup v1 host: podman delegates none)"
    return
  fi
  echo "  $(sdx journalctl -u countersd --no-pager -o cat -n 200 | grep 'starting listen=' | tail -n 1)"
  if [ "$n" = 1 ]; then
    ok "unit: drop-in CPUQuota=100%, no COUNTERSD_HANDLERS -> one handler (without: $SD_DEFAULT_HANDLERS)"
  else
    bad "unit: drop-in CPUQuota=100%, no COUNTERSD_HANDLERS -> one handler" "GetStats: $n"
  fi
}

sd_watchdog() {
  local restarts pid deadline wd cursor
  if ! sd_dropins "watchdog=WatchdogSec=2s"; then
    bad "unit: restarts with a drop-in WatchdogSec=2s"
    return
  fi
  wd=$(sd_show WatchdogUSec) restarts=$(sd_show NRestarts) pid=$(sd_show MainPID) cursor=$(sd_cursor)
  sdx sh -c "kill -STOP $pid"  # the shell's kill: the image has no /bin/kill
  deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ] && { [ "$(sd_show NRestarts)" = "$restarts" ] || [ "$(sd_show MainPID)" = "$pid" ] ||
                                        [ "$(sd_show MainPID)" = 0 ]; }; do
    sleep 0.5
  done
  echo "  WatchdogUSec $wd; NRestarts $restarts -> $(sd_show NRestarts); MainPID $pid -> $(sd_show MainPID)"
  if [ "$wd" = 2s ] && [ "$(sd_show NRestarts)" -gt "$restarts" ] && sd_wait_serving &&
     sd_journal_has 'Watchdog timeout' "$cursor" &&
     [ "$(sdx counterctl get sd.k 2>&1)" = 70 ]; then
    ok "unit: WatchdogSec=2s and a SIGSTOPped supervisor -> watchdog timeout, killed, restarted, serves"
  else
    sdx journalctl -u countersd --no-pager -o cat --after-cursor="$cursor" 2>&1 | tail -n 10
    bad "unit: WatchdogSec=2s and a SIGSTOPped supervisor -> killed and restarted"
  fi
}

sd_final_stop() {
  local st
  sd_dropins || bad "unit: restarts without the drop-ins"
  sdx timeout 45 systemctl stop countersd >/dev/null 2>&1
  st=$(sdx systemctl show -p Result -p ExecMainStatus --value countersd 2>&1 | tr '\n' ' ')
  if [ "$st" = "success 0 " ] &&
     sdx journalctl -u countersd --no-pager -o cat >"$WORK/sd-journal.log" 2>&1 &&
     grep -q 'final snapshot written' "$WORK/sd-journal.log"; then
    ok "unit: systemctl stop -> final snapshot, exit status 0"
  else
    tail -n 10 "$WORK/sd-journal.log" 2>/dev/null
    bad "unit: systemctl stop -> final snapshot, exit status 0" "Result/ExecMainStatus: $st"
  fi
}

# Run alone: tests/container/scenario_systemd.sh [BUILD_DIR]
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # shellcheck source=tests/container/lib.sh
  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
  ct_run "reuse_image scenario_systemd" "$@"
fi
