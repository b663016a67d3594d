#!/bin/sh
# The container image's entrypoint: runs countersd on 0.0.0.0:50051 with its
# data on /var/lib/countersd, GET /metrics on 0.0.0.0:50052, and with a token
# by default.
#
#   COUNTERS_TOKEN=<token>  (make one with `counterctl token new`): the
#       entrypoint writes an auth file admitting that token as admin
#       (`counterctl token hash`, the SHA-256 only) and adds --auth-file. The
#       same variable makes `counterctl` inside the container send it.
#   --auth-file=PATH among the arguments (e.g. a mounted Secret, as in
#       deploy/k8s/): used as it is; COUNTERS_TOKEN is then not needed.
#   Neither: refused, saying how to fix it.
# Metrics: COUNTERSD_METRICS_LISTEN defaults to 0.0.0.0:50052 here (the
# daemon's own default, 127.0.0.1:50052, is unreachable from outside the
# container). It is a variable rather than a flag so that the daemon's own
# rule decides: a --metrics-listen among the arguments wins over it, and
# `-e COUNTERSD_METRICS_LISTEN=HOST:PORT` replaces it; `--metrics-listen=`
# turns the endpoint off.
# Then exec, so that countersd is PID 1 and gets SIGTERM itself.
set -eu

auth_given=false
for arg in "$@"; do
  case "$arg" in
    --auth-file | --auth-file=* | --auth_file | --auth_file=*) auth_given=true ;;
    --allow-unauthenticated-network-access | --allow_unauthenticated_network_access) auth_given=true ;;
  esac
done

if ! $auth_given; then
  if [ -z "${COUNTERS_TOKEN:-}" ]; then
    echo "countersd-entrypoint: no credentials: set COUNTERS_TOKEN to a token (counterctl token new" \
      "prints one), or mount an auth file and pass --auth-file=PATH (deploy/auth.example)" >&2
    exit 2
  fi
  auth="${TMPDIR:-/tmp}/countersd-auth"
  umask 077
  counterctl token hash --role=admin >"$auth"
  set -- "--auth-file=$auth" "$@"
fi

export COUNTERSD_METRICS_LISTEN="${COUNTERSD_METRICS_LISTEN:-0.0.0.0:50052}"
exec countersd --listen=0.0.0.0:50051 --data-dir=/var/lib/countersd "$@"
